from careloop.core.screens import Screen

SCREENS = [Screen(name="home", url=lambda h: "/", allowed="alice")]
