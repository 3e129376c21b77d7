"""The fixed vocabulary of the demo hospital: departments, staff, names, places and clinical cases.

Everything here is plain data. ``careloop.demo.people`` and ``careloop.demo.seed`` draw from it
with a seeded generator, so the demo hospital is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOSPITAL = "示范医院"
PASSWORD = "Demo@2026"

# code, name, kind, wards
DEPARTMENTS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("CARD", "心内科", "clinical", ("心内科一病区", "心内科二病区", "CCU")),
    ("ORTH", "骨科", "clinical", ("骨科一病区", "骨科二病区")),
    ("ENDO", "内分泌科", "clinical", ("内分泌科病区",)),
    ("OBST", "产科", "clinical", ("产科一病区", "产科二病区")),
    ("GSUR", "普外科", "clinical", ("普外科一病区", "普外科二病区")),
    ("NEUR", "神经内科", "clinical", ("神经内科病区", "卒中单元")),
    ("RESP", "呼吸内科", "clinical", ("呼吸内科病区",)),
    ("ONCO", "肿瘤科", "clinical", ("肿瘤科病区", "日间化疗病房")),
    ("FUC", "随访中心", "followup", ()),
]
CLINICAL = [code for code, _name, kind, _wards in DEPARTMENTS if kind == "clinical"]

# How the hospital's inpatients spread over the clinical departments.
DEPARTMENT_WEIGHTS = {
    "CARD": 20,
    "ORTH": 15,
    "ENDO": 11,
    "OBST": 12,
    "GSUR": 13,
    "NEUR": 11,
    "RESP": 10,
    "ONCO": 8,
}


@dataclass(frozen=True)
class StaffMember:
    username: str
    display_name: str
    role: str
    departments: tuple[str, ...] = ()
    all_departments: bool = False
    superuser: bool = False
    staff_code: str = ""


# The logins printed by ``careloop demo`` come first; README.md lists them too.
LOGINS: list[StaffMember] = [
    StaffMember("admin", "系统管理员", "admin", (), True, True, "A0001"),
    StaffMember("nurse_cardio", "李静", "nurse", ("CARD",), staff_code="N1001"),
    StaffMember("nurse_ortho", "王芳", "nurse", ("ORTH",), staff_code="N2001"),
    StaffMember("supervisor", "陈丽华", "supervisor", ("FUC", *CLINICAL), staff_code="S0001"),
    StaffMember("doctor_cardio", "张建国", "doctor", ("CARD",), staff_code="D1001"),
    StaffMember("leader", "周院长", "leader", (), True, staff_code="L0001"),
]

_DOCTOR_NAMES = {
    "CARD": ("张建国", "刘志强", "黄海涛"),
    "ORTH": ("赵立新", "孙卫东", "马俊杰"),
    "ENDO": ("吴晓红", "郑丽"),
    "OBST": ("何春梅", "罗晓雯", "梁静"),
    "GSUR": ("谢斌", "宋海峰", "唐明"),
    "NEUR": ("许文博", "韩雪"),
    "RESP": ("冯建平", "邓晓东"),
    "ONCO": ("曹永刚", "彭敏"),
}
_NURSE_NAMES = {
    "CARD": ("李静", "杨倩"),
    "ORTH": ("王芳", "朱婷"),
    "ENDO": ("胡晓燕",),
    "OBST": ("郭娟", "林雪"),
    "GSUR": ("高艳",),
    "NEUR": ("徐丽娟",),
    "RESP": ("袁琳",),
    "ONCO": ("潘颖",),
}
DEPT_SLUG = {
    "CARD": "cardio",
    "ORTH": "ortho",
    "ENDO": "endo",
    "OBST": "obst",
    "GSUR": "gsur",
    "NEUR": "neuro",
    "RESP": "resp",
    "ONCO": "onco",
}


def _more_staff() -> list[StaffMember]:
    staff: list[StaffMember] = []
    taken = {member.username for member in LOGINS}
    for index, code in enumerate(CLINICAL, start=1):
        slug = DEPT_SLUG[code]
        for n, name in enumerate(_DOCTOR_NAMES[code], start=1):
            username = f"doctor_{slug}" if n == 1 else f"doctor_{slug}{n}"
            if username not in taken:
                staff.append(
                    StaffMember(username, name, "doctor", (code,), staff_code=f"D{index}00{n}")
                )
        for n, name in enumerate(_NURSE_NAMES[code], start=1):
            username = f"nurse_{slug}" if n == 1 else f"nurse_{slug}{n}"
            if username not in taken:
                staff.append(
                    StaffMember(username, name, "nurse", (code,), staff_code=f"N{index}00{n}")
                )
        staff.append(
            StaffMember(
                f"handler_{slug}",
                f"{_DOCTOR_NAMES[code][0][0]}主任",
                "handler",
                (code,),
                staff_code=f"H{index}001",
            )
        )
    # The follow-up center's own nurses call for every department.
    for n, name in enumerate(("董小燕", "蒋文静", "蔡晓敏"), start=1):
        staff.append(
            StaffMember(f"nurse_fuc{n}", name, "nurse", ("FUC", *CLINICAL), staff_code=f"N900{n}")
        )
    staff.append(
        StaffMember("supervisor2", "沈红梅", "supervisor", ("FUC", *CLINICAL), staff_code="S0002")
    )
    return staff


STAFF: list[StaffMember] = LOGINS + _more_staff()

# Surnames roughly by frequency in China (weights in ‰ of the population).
SURNAMES: list[tuple[str, int]] = [
    ("王", 72), ("李", 71), ("张", 68), ("刘", 54), ("陈", 46), ("杨", 32), ("黄", 24), ("赵", 20),
    ("吴", 20), ("周", 19), ("徐", 16), ("孙", 15), ("马", 13), ("朱", 13), ("胡", 12), ("郭", 11),
    ("何", 11), ("林", 10), ("高", 10), ("罗", 9), ("郑", 9), ("梁", 8), ("谢", 7), ("宋", 6),
    ("唐", 6), ("许", 6), ("韩", 6), ("冯", 5), ("邓", 5), ("曹", 5), ("彭", 5), ("曾", 5),
    ("肖", 5), ("田", 4), ("董", 4), ("袁", 4), ("潘", 4), ("于", 4), ("蒋", 4), ("蔡", 4),
    ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 3), ("魏", 3), ("吕", 3), ("丁", 3),
    ("任", 3), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3), ("崔", 3), ("钟", 3), ("谭", 3),
    ("陆", 3), ("汪", 3), ("范", 3), ("金", 3), ("石", 3), ("廖", 2), ("贾", 2), ("夏", 2),
    ("韦", 2), ("方", 2), ("白", 2), ("邹", 2), ("孟", 2), ("熊", 2), ("秦", 2), ("邱", 2),
    ("江", 2), ("尹", 2), ("薛", 2), ("段", 2), ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2),
    ("陶", 2), ("黎", 2), ("贺", 2), ("顾", 2), ("毛", 2), ("郝", 2), ("龚", 2), ("邵", 2),
    ("万", 2), ("钱", 2), ("严", 2), ("戴", 2), ("莫", 1), ("孔", 1), ("汤", 1), ("应", 1),
    ("楼", 1), ("俞", 1), ("章", 1), ("施", 1), ("欧阳", 1), ("诸葛", 1),
]  # fmt: skip

# Whole given names typical of each generation, and characters to compose more from.
GIVEN_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("M", "old"): (
        "建国", "国强", "志明", "德胜", "福生", "永福", "金海", "国华", "建华", "振华", "学文",
        "宝山", "长林", "根宝", "水根", "文斌", "德明", "荣华", "庆丰", "桂林", "仁杰", "忠良",
    ),
    ("F", "old"): (
        "秀英", "桂英", "秀兰", "玉兰", "桂兰", "淑珍", "凤英", "玉珍", "秀珍", "素芳", "美华",
        "翠花", "月娥", "彩凤", "惠珍", "雪琴", "金凤", "阿妹", "杏花", "爱华", "素琴", "菊香",
    ),
    ("M", "mid"): (
        "伟", "强", "磊", "军", "勇", "斌", "建军", "志强", "海涛", "晓东", "卫东", "立新",
        "红军", "建平", "永刚", "国栋", "晓峰", "建明", "卫国", "新华", "海波", "剑锋",
    ),
    ("F", "mid"): (
        "丽", "敏", "静", "艳", "芳", "娟", "霞", "红梅", "丽华", "海燕", "晓红", "春梅",
        "小燕", "丽萍", "秀芳", "雪梅", "慧", "丽娟", "晓霞", "文娟", "玲", "燕",
    ),
    ("M", "young"): (
        "浩", "杰", "涛", "鹏", "超", "俊杰", "浩然", "宇", "子豪", "文博", "鑫", "晨",
        "一鸣", "梓轩", "宇航", "家豪", "天佑", "明轩", "思远", "博文", "皓", "昊天",
    ),
    ("F", "young"): (
        "婷", "雪", "倩", "颖", "琳", "欣怡", "梦瑶", "雨婷", "佳琪", "思琪", "诗涵", "晓雯",
        "文静", "婧", "佳怡", "子涵", "雨欣", "可欣", "梦洁", "安琪", "悦", "心怡",
    ),
}  # fmt: skip
# Characters to compose given names from, by sex and generation: (first, second).
GIVEN_CHARS: dict[tuple[str, str], tuple[str, str]] = {
    ("M", "old"): ("国建德福永金文学宝长根水荣庆仁忠志振世光有顺得洪", "华明生林山清海发才昌贵禄成富祥兴福胜全章义田根"),
    ("F", "old"): ("秀桂玉淑凤素美翠月彩惠雪金爱菊兰春冬杏巧小宝", "英兰珍芳华花娥凤琴香梅云仙珠娟娣莲妹芬姑菊"),
    ("M", "mid"): ("建志海晓卫立永国新红伟文明小军春东剑少", "军强平涛东峰斌勇刚华明辉波林伟民新兵忠俊"),
    ("F", "mid"): ("丽晓海春秀雪红小美艳玉慧丽文燕彩", "萍红燕梅霞娟芳丽敏华琴英静艳玲洁"),
    ("M", "young"): ("浩子宇俊家梓天明思博嘉一皓昊泽奕铭睿", "然豪轩杰航宇辰涛博文远鸣阳泽成凯哲"),
    ("F", "young"): ("欣梦雨佳思诗可子心语若婉雅晓紫梓依", "怡瑶婷琪涵欣彤萱雯妍琳悦然颖洁桐"),
}  # fmt: skip


@dataclass(frozen=True)
class Region:
    """A real county-level division: the code is the first six digits of its ID-card numbers."""

    code: str
    place: str  # province + city + district, as written in an address
    streets: tuple[str, ...]
    weight: int


# The demo hospital is in Hangzhou: most patients come from Zhejiang, some from further away.
REGIONS: list[Region] = [
    Region("330102", "浙江省杭州市上城区", ("解放路", "延安路", "清泰街", "望江路", "秋涛路"), 12),
    Region("330105", "浙江省杭州市拱墅区", ("莫干山路", "湖墅南路", "大关路", "上塘路", "米市巷"), 12),
    Region("330106", "浙江省杭州市西湖区", ("文三路", "教工路", "天目山路", "古墩路", "文一路"), 14),
    Region("330108", "浙江省杭州市滨江区", ("江南大道", "滨盛路", "长河路", "西兴路"), 8),
    Region("330109", "浙江省杭州市萧山区", ("人民路", "金城路", "市心中路", "育才路"), 9),
    Region("330110", "浙江省杭州市余杭区", ("文一西路", "五常大道", "临平大道", "南苑街"), 9),
    Region("330122", "浙江省杭州市桐庐县", ("迎春南路", "白云源路", "学圣路"), 3),
    Region("330203", "浙江省宁波市海曙区", ("中山西路", "解放南路", "药行街"), 4),
    Region("330302", "浙江省温州市鹿城区", ("人民路", "车站大道", "府前街"), 3),
    Region("330402", "浙江省嘉兴市南湖区", ("中山东路", "南湖大道", "勤俭路"), 3),
    Region("330502", "浙江省湖州市吴兴区", ("红旗路", "人民路", "凤凰路"), 3),
    Region("330602", "浙江省绍兴市越城区", ("解放北路", "中兴中路", "环城西路"), 4),
    Region("330702", "浙江省金华市婺城区", ("八一北街", "宾虹路", "人民西路"), 3),
    Region("331002", "浙江省台州市椒江区", ("市府大道", "中山西路", "东海大道"), 2),
    Region("310104", "上海市徐汇区", ("漕溪北路", "肇嘉浜路", "天钥桥路"), 2),
    Region("320508", "江苏省苏州市姑苏区", ("人民路", "干将西路", "十全街"), 1),
    Region("340104", "安徽省合肥市蜀山区", ("长江西路", "黄山路", "潜山路"), 2),
    Region("361102", "江西省上饶市信州区", ("中山路", "五三大道", "解放路"), 2),
    Region("350102", "福建省福州市鼓楼区", ("五四路", "杨桥中路", "东街"), 1),
    Region("410105", "河南省郑州市金水区", ("花园路", "经三路", "农业路"), 2),
    Region("510107", "四川省成都市武侯区", ("武侯祠大街", "科华北路", "人民南路"), 1),
    Region("110105", "北京市朝阳区", ("朝阳路", "建国路", "望京街"), 1),
]  # fmt: skip

MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "177", "180", "181", "182", "183", "185",
    "186", "187", "188", "189", "198", "199",
)  # fmt: skip

# drug, dose, frequency, route, quantity, unit, daily amount (units a day)
Drug = tuple[str, str, str, str, int, str, float]

ASPIRIN: Drug = ("阿司匹林肠溶片", "100mg", "qd", "口服", 30, "片", 1)
CLOPIDOGREL: Drug = ("硫酸氢氯吡格雷片", "75mg", "qd", "口服", 28, "片", 1)
TICAGRELOR: Drug = ("替格瑞洛片", "90mg", "bid", "口服", 28, "片", 2)
ATORVASTATIN: Drug = ("阿托伐他汀钙片", "20mg", "qn", "口服", 28, "片", 1)
ROSUVASTATIN: Drug = ("瑞舒伐他汀钙片", "10mg", "qn", "口服", 28, "片", 1)
METOPROLOL: Drug = ("琥珀酸美托洛尔缓释片", "47.5mg", "qd", "口服", 28, "片", 1)
ISOSORBIDE: Drug = ("单硝酸异山梨酯缓释片", "40mg", "qd", "口服", 24, "片", 1)
FUROSEMIDE: Drug = ("呋塞米片", "20mg", "qd", "口服", 14, "片", 1)
SPIRONOLACTONE: Drug = ("螺内酯片", "20mg", "qd", "口服", 28, "片", 1)
SACUBITRIL: Drug = ("沙库巴曲缬沙坦钠片", "50mg", "bid", "口服", 28, "片", 2)
RIVAROXABAN_AF: Drug = ("利伐沙班片", "20mg", "qd", "口服", 28, "片", 1)
AMLODIPINE: Drug = ("苯磺酸氨氯地平片", "5mg", "qd", "口服", 28, "片", 1)
CELECOXIB: Drug = ("塞来昔布胶囊", "200mg", "qd", "口服", 14, "粒", 1)
RIVAROXABAN: Drug = ("利伐沙班片", "10mg", "qd", "口服", 14, "片", 1)
CALCIUM: Drug = ("碳酸钙D3片", "600mg", "qd", "口服", 30, "片", 1)
ALFACALCIDOL: Drug = ("阿法骨化醇软胶囊", "0.5μg", "qd", "口服", 30, "粒", 1)
EPERISONE: Drug = ("盐酸乙哌立松片", "50mg", "tid", "口服", 42, "片", 3)
METFORMIN: Drug = ("盐酸二甲双胍片", "0.5g", "tid", "口服", 90, "片", 3)
ACARBOSE: Drug = ("阿卡波糖片", "50mg", "tid", "口服", 90, "片", 3)
GLARGINE: Drug = ("甘精胰岛素注射液", "12U", "qn", "皮下注射", 3, "支", 0.04)
ASPART: Drug = ("门冬胰岛素注射液", "6U", "tid", "皮下注射", 3, "支", 0.06)
DAPAGLIFLOZIN: Drug = ("达格列净片", "10mg", "qd", "口服", 28, "片", 1)
EPALRESTAT: Drug = ("依帕司他片", "50mg", "tid", "口服", 60, "片", 3)
THIAMAZOLE: Drug = ("甲巯咪唑片", "10mg", "tid", "口服", 90, "片", 3)
IRON: Drug = ("多糖铁复合物胶囊", "150mg", "qd", "口服", 20, "粒", 1)
MOTHERWORT: Drug = ("益母草颗粒", "15g", "bid", "冲服", 20, "袋", 2)
CEFUROXIME: Drug = ("头孢呋辛酯片", "0.25g", "bid", "口服", 12, "片", 2)
NIFEDIPINE: Drug = ("硝苯地平控释片", "30mg", "qd", "口服", 14, "片", 1)
BUTYLPHTHALIDE: Drug = ("丁苯酞软胶囊", "0.2g", "tid", "口服", 72, "粒", 3)
ATORVASTATIN_HIGH: Drug = ("阿托伐他汀钙片", "40mg", "qn", "口服", 28, "片", 1)
MADOPAR: Drug = ("多巴丝肼片", "125mg", "tid", "口服", 60, "片", 3)
VALPROATE: Drug = ("丙戊酸钠缓释片", "500mg", "bid", "口服", 60, "片", 2)
MOXIFLOXACIN: Drug = ("盐酸莫西沙星片", "0.4g", "qd", "口服", 5, "片", 1)
AMBROXOL: Drug = ("盐酸氨溴索片", "30mg", "tid", "口服", 20, "片", 3)
TIOTROPIUM: Drug = ("噻托溴铵粉吸入剂", "18μg", "qd", "吸入", 30, "粒", 1)
BUDESONIDE: Drug = ("布地奈德福莫特罗吸入粉雾剂", "160/4.5μg", "bid", "吸入", 1, "支", 0.017)
MONTELUKAST: Drug = ("孟鲁司特钠片", "10mg", "qn", "口服", 30, "片", 1)
ONDANSETRON: Drug = ("盐酸昂丹司琼片", "8mg", "bid", "口服", 10, "片", 2)
MEGESTROL: Drug = ("醋酸甲地孕酮分散片", "160mg", "qd", "口服", 30, "片", 1)
LETROZOLE: Drug = ("来曲唑片", "2.5mg", "qd", "口服", 30, "片", 1)
TAMOXIFEN: Drug = ("枸橼酸他莫昔芬片", "10mg", "bid", "口服", 60, "片", 2)
CAPECITABINE: Drug = ("卡培他滨片", "0.5g", "bid", "口服", 56, "片", 4)
OMEPRAZOLE: Drug = ("奥美拉唑肠溶胶囊", "20mg", "qd", "口服", 14, "粒", 1)

CARDIAC_ORDERS = (
    "低盐低脂饮食，戒烟限酒，控制体重。",
    "坚持双联抗血小板治疗12个月，不可擅自停药或减量，注意有无牙龈出血、黑便。",
    "出院1个月后心内科门诊复查血常规、肝肾功能、血脂，3个月后复查心脏超声。",
    "如出现胸痛、胸闷持续不缓解超过15分钟，立即舌下含服硝酸甘油并拨打120。",
    "穿刺处保持清洁干燥，一周内避免提重物。",
)
ORTHO_ORDERS = (
    "术后6周内使用助行器辅助行走，避免跌倒。",
    "坚持股四头肌收缩及屈膝功能锻炼，每日3次，每次30分钟。",
    "术后2周骨科门诊拆线，术后1、3、6个月门诊复查X线片。",
    "注意观察切口有无红肿、渗液，如体温超过38.5℃及时就诊。",
    "抗凝药物需按时服用至术后第14天，注意有无出血倾向。",
)
ENDO_ORDERS = (
    "糖尿病饮食，定时定量，主食粗细搭配，限制甜食。",
    "每日监测空腹及三餐后2小时血糖并记录，空腹血糖控制在4.4–7.0mmol/L。",
    "随身携带糖果，出现心慌、出汗、手抖等低血糖症状时立即进食。",
    "每3个月复查糖化血红蛋白，每年检查眼底、尿微量白蛋白及足部。",
    "坚持每日步行30分钟以上，注意足部护理，选择宽松鞋袜。",
)
OBST_ORDERS = (
    "产后42天携婴儿来院产后门诊复查。",
    "坚持母乳喂养，按需哺乳，注意乳房护理。",
    "保持会阴部清洁，恶露超过6周未净或量多有异味及时就诊。",
    "产后6周内禁止盆浴及性生活，注意休息，适当活动。",
)
GSUR_ORDERS = (
    "术后1个月内避免剧烈运动及重体力劳动。",
    "保持切口清洁干燥，术后7–10天门诊换药拆线。",
    "清淡易消化饮食，少食多餐，忌辛辣油腻。",
    "如出现腹痛加剧、发热、切口渗液，请及时就诊。",
)
NEUR_ORDERS = (
    "坚持服用抗血小板及他汀类药物，不可自行停药。",
    "控制血压在140/90mmHg以下，低盐低脂饮食，戒烟限酒。",
    "坚持肢体功能及语言康复训练，防止跌倒。",
    "如出现口角歪斜、肢体无力、言语不清加重，立即拨打120。",
    "出院1个月后神经内科门诊复诊。",
)
RESP_ORDERS = (
    "注意保暖，预防感冒，戒烟，避免吸入粉尘和刺激性气体。",
    "坚持呼吸功能锻炼（缩唇呼吸、腹式呼吸）。",
    "正确使用吸入装置，用药后漱口。",
    "出院2周后呼吸内科门诊复查血常规及胸部CT。",
)
ONCO_ORDERS = (
    "下一周期化疗前1周门诊复查血常规、肝肾功能。",
    "化疗后注意监测体温，白细胞低时减少外出，避免感染。",
    "加强营养，高蛋白饮食，少食多餐。",
    "如出现发热超过38℃、严重呕吐或腹泻，及时就诊。",
)


@dataclass(frozen=True)
class Case:
    """A kind of inpatient stay: the discharge diagnosis and what usually goes with it."""

    code: str
    name: str
    weight: int
    stay_days: tuple[int, int]
    surgery: tuple[str, str] | None = None  # ICD-9-CM-3 code, name
    surgery_share: float = 1.0  # share of these stays that had the operation
    drugs: tuple[Drug, ...] = ()
    orders: tuple[str, ...] = ()
    sex: str = ""  # "F" for obstetrics, "" for either
    birth_years: tuple[int, int] = (1935, 2000)
    outpatient: tuple[str, str] = ("", "")  # diagnosis of a follow-up clinic visit
    tags: tuple[str, ...] = field(default=())


PCI = ("36.06", "经皮冠状动脉介入治疗（PCI）")
CASES: dict[str, list[Case]] = {
    "CARD": [
        Case("I21.0", "急性前壁心肌梗死", 5, (5, 9), PCI, 0.95,
             (ASPIRIN, TICAGRELOR, ATORVASTATIN, METOPROLOL), CARDIAC_ORDERS, "", (1938, 1985)),
        Case("I21.1", "急性下壁心肌梗死", 3, (5, 9), PCI, 0.95,
             (ASPIRIN, CLOPIDOGREL, ATORVASTATIN, METOPROLOL), CARDIAC_ORDERS, "", (1938, 1985)),
        Case("I25.1", "冠状动脉粥样硬化性心脏病", 8, (3, 7), PCI, 0.7,
             (ASPIRIN, CLOPIDOGREL, ROSUVASTATIN, ISOSORBIDE), CARDIAC_ORDERS, "", (1935, 1980),
             ("I25.1", "冠心病 PCI术后复查"), ("冠心病",)),
        Case("I20.0", "不稳定型心绞痛", 4, (3, 6), PCI, 0.8,
             (ASPIRIN, CLOPIDOGREL, ATORVASTATIN, ISOSORBIDE), CARDIAC_ORDERS, "", (1938, 1982)),
        Case("I50.9", "心力衰竭", 3, (7, 12), None, 0,
             (FUROSEMIDE, SPIRONOLACTONE, SACUBITRIL, METOPROLOL), CARDIAC_ORDERS[:1] + CARDIAC_ORDERS[3:4],
             "", (1935, 1965)),
        Case("I48.9", "心房颤动", 2, (4, 7), None, 0,
             (RIVAROXABAN_AF, METOPROLOL), ("规律服用抗凝药，注意有无出血，定期复查。",), "", (1935, 1975)),
    ],
    "ORTH": [
        Case("M17.1", "膝关节骨性关节炎", 6, (7, 12), ("81.54", "全膝关节置换术"), 1.0,
             (CELECOXIB, RIVAROXABAN, CALCIUM), ORTHO_ORDERS, "", (1938, 1970)),
        Case("M16.1", "髋关节骨性关节炎", 2, (8, 13), ("81.51", "全髋关节置换术"), 1.0,
             (CELECOXIB, RIVAROXABAN, CALCIUM), ORTHO_ORDERS[:1] + ORTHO_ORDERS[2:], "", (1938, 1970)),
        Case("S72.0", "股骨颈骨折", 3, (8, 14), ("81.52", "人工股骨头置换术"), 1.0,
             (RIVAROXABAN, CALCIUM, ALFACALCIDOL), ORTHO_ORDERS[:1] + ORTHO_ORDERS[2:], "", (1935, 1960)),
        Case("M51.2", "腰椎间盘突出症", 3, (6, 10), ("80.51", "腰椎间盘切除术"), 0.8,
             (CELECOXIB, EPERISONE), ORTHO_ORDERS[2:4], "", (1955, 1995)),
        Case("S52.5", "桡骨下端骨折", 2, (4, 7), ("79.32", "桡骨骨折切开复位内固定术"), 1.0,
             (CELECOXIB, CALCIUM), ORTHO_ORDERS[2:4], "", (1940, 2000)),
    ],
    "ENDO": [
        Case("E11.9", "2型糖尿病", 6, (7, 12), None, 0,
             (METFORMIN, ACARBOSE, DAPAGLIFLOZIN), ENDO_ORDERS, "", (1940, 1990),
             ("E11.9", "2型糖尿病 复诊"), ("糖尿病",)),
        Case("E11.2", "2型糖尿病性肾病", 2, (8, 13), None, 0,
             (GLARGINE, ASPART, DAPAGLIFLOZIN), ENDO_ORDERS, "", (1940, 1975), tags=("糖尿病",)),
        Case("E11.4", "2型糖尿病性周围神经病", 2, (7, 12), None, 0,
             (METFORMIN, GLARGINE, EPALRESTAT), ENDO_ORDERS, "", (1940, 1975), tags=("糖尿病",)),
        Case("E05.0", "甲状腺功能亢进症（Graves病）", 2, (5, 8), None, 0,
             (THIAMAZOLE,), ("每月复查甲状腺功能、血常规及肝功能。",), "", (1960, 2000)),
    ],
    "OBST": [
        Case("O80", "单胎顺产", 6, (2, 4), None, 0, (IRON, MOTHERWORT), OBST_ORDERS, "F", (1984, 2003)),
        Case("O82", "经剖宫产术的单胎分娩", 4, (4, 6), ("74.1", "子宫下段剖宫产术"), 1.0,
             (IRON, CEFUROXIME), OBST_ORDERS + GSUR_ORDERS[1:2], "F", (1984, 2003)),
        Case("O13", "妊娠期高血压", 1, (4, 7), ("74.1", "子宫下段剖宫产术"), 0.6,
             (NIFEDIPINE, IRON), OBST_ORDERS, "F", (1982, 2001)),
        Case("O24.4", "妊娠期糖尿病", 1, (3, 5), None, 0, (IRON,), OBST_ORDERS, "F", (1982, 2001)),
    ],
    "GSUR": [
        Case("K35.8", "急性阑尾炎", 4, (3, 6), ("47.09", "阑尾切除术"), 1.0,
             (CEFUROXIME,), GSUR_ORDERS, "", (1950, 2005)),
        Case("K80.1", "胆囊结石伴慢性胆囊炎", 4, (3, 6), ("51.23", "腹腔镜下胆囊切除术"), 1.0,
             (OMEPRAZOLE,), GSUR_ORDERS, "", (1945, 1995)),
        Case("K40.9", "腹股沟疝", 3, (2, 4), ("53.05", "单侧腹股沟疝无张力修补术"), 1.0,
             (), GSUR_ORDERS[:2], "", (1940, 1995)),
        Case("E04.1", "甲状腺结节", 2, (3, 5), ("06.39", "甲状腺部分切除术"), 1.0,
             (), GSUR_ORDERS[1:3], "", (1955, 2000)),
    ],
    "NEUR": [
        Case("I63.9", "脑梗死", 7, (10, 16), None, 0,
             (ASPIRIN, ATORVASTATIN_HIGH, BUTYLPHTHALIDE), NEUR_ORDERS, "", (1935, 1975),
             ("I63.9", "脑梗死恢复期复诊"), ("脑卒中",)),
        Case("G45.9", "短暂性脑缺血发作", 2, (5, 8), None, 0,
             (ASPIRIN, CLOPIDOGREL, ATORVASTATIN), NEUR_ORDERS[:2] + NEUR_ORDERS[3:], "", (1940, 1980)),
        Case("G20", "帕金森病", 2, (8, 12), None, 0, (MADOPAR,), NEUR_ORDERS[2:3], "", (1935, 1965)),
        Case("G40.9", "癫痫", 1, (5, 9), None, 0, (VALPROATE,), ("按时服药，不可自行停药，避免熬夜。",), "", (1965, 2005)),
    ],
    "RESP": [
        Case("J18.9", "肺炎", 5, (7, 12), None, 0, (MOXIFLOXACIN, AMBROXOL), RESP_ORDERS, "", (1935, 2000)),
        Case("J44.1", "慢性阻塞性肺疾病急性加重", 4, (8, 14), None, 0,
             (TIOTROPIUM, BUDESONIDE, AMBROXOL), RESP_ORDERS, "", (1935, 1965),
             ("J44.9", "慢阻肺 复诊"), ("慢阻肺",)),
        Case("J45.9", "支气管哮喘", 2, (5, 8), None, 0, (BUDESONIDE, MONTELUKAST), RESP_ORDERS, "", (1950, 2005)),
    ],
    "ONCO": [
        Case("C34.9", "肺癌", 4, (3, 6), ("99.25", "静脉化疗"), 0.9,
             (ONDANSETRON, MEGESTROL), ONCO_ORDERS, "", (1935, 1975), tags=("肿瘤",)),
        Case("C16.9", "胃癌", 2, (3, 6), ("99.25", "静脉化疗"), 0.9,
             (ONDANSETRON, CAPECITABINE, OMEPRAZOLE), ONCO_ORDERS, "", (1935, 1975), tags=("肿瘤",)),
        Case("C50.9", "乳腺癌", 3, (3, 5), ("99.25", "静脉化疗"), 0.8,
             (LETROZOLE, ONDANSETRON), ONCO_ORDERS, "F", (1950, 1990), tags=("肿瘤",)),
        Case("C18.7", "乙状结肠癌", 2, (3, 6), ("99.25", "静脉化疗"), 0.9,
             (CAPECITABINE, ONDANSETRON), ONCO_ORDERS, "", (1940, 1975), tags=("肿瘤",)),
    ],
}  # fmt: skip

# Outpatient-only visits (no stay): department, diagnosis code, name.
OUTPATIENT_VISITS: list[tuple[str, str, str]] = [
    ("CARD", "I10", "原发性高血压"),
    ("CARD", "I25.1", "冠状动脉粥样硬化性心脏病"),
    ("ENDO", "E11.9", "2型糖尿病"),
    ("ENDO", "E03.9", "甲状腺功能减退症"),
    ("RESP", "J20.9", "急性支气管炎"),
    ("RESP", "J45.9", "支气管哮喘"),
    ("ORTH", "M54.5", "腰痛"),
    ("ORTH", "M17.9", "膝关节骨性关节炎"),
    ("NEUR", "G43.9", "偏头痛"),
    ("GSUR", "K40.9", "腹股沟疝"),
]


@dataclass(frozen=True)
class StepSpec:
    day: int
    title: str
    script: str = ""


@dataclass(frozen=True)
class PlanSpec:
    """A follow-up plan template of the demo hospital."""

    name: str
    department: str
    questionnaire: str  # code of a sample questionnaire (careloop/surveys/samples.py)
    rules: dict
    steps: tuple[StepSpec, ...]
    script: str


def _opening(department: str) -> str:
    return (
        f"您好，请问是××（患者姓名）本人吗？我是{HOSPITAL}{department}的随访护士××，"
        "您出院已经有一段时间了，今天打电话想了解一下您的恢复情况，大约需要占用您3–5分钟，现在方便吗？"
    )


_CLOSING = (
    "感谢您的配合。请您按医嘱按时服药、按期复查，如有不适请及时就诊，"
    "也可以拨打我院随访中心电话咨询。祝您早日康复，再见！（待患者先挂机后再挂断电话）"
)

PLANS: list[PlanSpec] = [
    PlanSpec(
        name="PCI术后随访",
        department="CARD",
        questionnaire="pci",
        rules={"diagnosis_prefixes": ["I20", "I21", "I25"], "surgery_codes": ["36.06"]},
        script="\n".join(
            (
                _opening("心内科"),
                "1. 询问有无胸痛、胸闷、气短，活动耐量如何；",
                "2. 询问穿刺部位（手腕或大腿根部）有无出血、血肿、疼痛；",
                "3. 核对用药：阿司匹林、氯吡格雷/替格瑞洛是否每天按时服用，有无牙龈出血、黑便；",
                "4. 提醒：双联抗血小板治疗不少于12个月，不可擅自停药；低盐低脂饮食，戒烟；",
                "5. 提醒复查时间：出院后1个月复查血常规、肝功能、血脂。",
                "如患者诉胸痛持续超过15分钟不缓解，请立即建议拨打120并通知主管医生。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(3, "出院第3天电话随访", "重点询问穿刺部位情况和胸痛症状，核对出院带药。"),
            StepSpec(7, "出院第7天电话随访", "询问用药依从性及不良反应，有无牙龈出血、黑便。"),
            StepSpec(30, "出院1个月电话随访", "提醒门诊复查血常规、肝功能、血脂，询问活动情况。"),
            StepSpec(
                90, "出院3个月电话随访", "询问生活方式改变（戒烟、饮食、运动），提醒坚持双抗治疗。"
            ),
        ),
    ),
    PlanSpec(
        name="膝关节置换术后随访",
        department="ORTH",
        questionnaire="tka",
        rules={"surgery_codes": ["81.54"]},
        script="\n".join(
            (
                _opening("骨科"),
                "1. 询问切口情况：有无红肿、渗液，是否已拆线；",
                "2. 询问疼痛评分（0–10分），夜间是否影响睡眠；",
                "3. 询问功能锻炼：屈膝角度、能否借助助行器行走；",
                "4. 询问小腿有无肿胀、疼痛（警惕下肢深静脉血栓）；",
                "5. 提醒抗凝药服用至术后第14天，按时门诊复查X线片。",
                "如疼痛评分≥7分、体温超过38.5℃或小腿明显肿痛，请建议患者尽快返院就诊。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(3, "术后第3天电话随访", "重点询问切口、疼痛和下肢肿胀情况。"),
            StepSpec(14, "术后2周电话随访", "询问拆线情况及屈膝角度，提醒抗凝药停药时间。"),
            StepSpec(30, "术后1个月电话随访", "询问行走能力，提醒门诊复查X线片。"),
            StepSpec(90, "术后3个月电话随访", "评估关节功能恢复及满意度。"),
        ),
    ),
    PlanSpec(
        name="2型糖尿病随访",
        department="ENDO",
        questionnaire="diabetes",
        rules={"diagnosis_prefixes": ["E11"]},
        script="\n".join(
            (
                _opening("内分泌科"),
                "1. 询问近期空腹及餐后血糖监测结果；",
                "2. 询问有无心慌、出汗、手抖等低血糖表现；",
                "3. 核对降糖药、胰岛素的用法用量，检查注射部位是否轮换；",
                "4. 询问饮食控制与运动情况，体重变化；",
                "5. 提醒每3个月复查糖化血红蛋白，每年查眼底和足部。",
                "如空腹血糖持续高于13.9mmol/L或反复低血糖，请通知主管医生。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(7, "出院1周电话随访", "重点询问血糖监测和低血糖情况。"),
            StepSpec(30, "出院1个月电话随访", "询问用药依从性和饮食运动。"),
            StepSpec(90, "出院3个月电话随访", "提醒复查糖化血红蛋白。"),
            StepSpec(180, "出院6个月电话随访", "年度并发症筛查提醒（眼底、尿微量白蛋白、足部）。"),
        ),
    ),
    PlanSpec(
        name="产后随访",
        department="OBST",
        questionnaire="postpartum",
        rules={"diagnosis_prefixes": ["O"]},
        script="\n".join(
            (
                _opening("产科"),
                "1. 询问产妇体温、恶露量及颜色，会阴或腹部切口愈合情况；",
                "2. 询问母乳喂养情况，有无乳房胀痛、硬结；",
                "3. 询问新生儿吃奶、睡眠、黄疸及脐部情况；",
                "4. 关注产妇情绪，有无失眠、情绪低落（产后抑郁筛查）；",
                "5. 提醒产后42天母婴一同来院复查。",
                "如体温超过38℃、恶露量多有异味或出现持续情绪低落，请建议尽快就诊。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(3, "产后第3天电话随访", "重点询问母乳喂养和新生儿黄疸。"),
            StepSpec(7, "产后第7天电话随访", "询问恶露、切口愈合和产妇情绪。"),
            StepSpec(42, "产后42天复查提醒", "提醒母婴来院复查，询问避孕指导需求。"),
        ),
    ),
    PlanSpec(
        name="普外科术后随访",
        department="GSUR",
        questionnaire="discharge",
        rules={"surgery_codes": ["47.09", "51.23", "53.05", "06.39"]},
        script="\n".join(
            (
                _opening("普外科"),
                "1. 询问切口有无红肿、渗液，是否已拆线；",
                "2. 询问有无腹痛、发热、恶心呕吐，饮食及大小便情况；",
                "3. 提醒术后1个月内避免重体力劳动。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(3, "术后第3天电话随访"),
            StepSpec(14, "术后2周电话随访"),
            StepSpec(30, "术后1个月电话随访"),
        ),
    ),
    PlanSpec(
        name="脑卒中出院随访",
        department="NEUR",
        questionnaire="discharge",
        rules={"diagnosis_prefixes": ["I63", "G45"]},
        script="\n".join(
            (
                _opening("神经内科"),
                "1. 询问肢体活动、言语功能较出院时有无变化；",
                "2. 核对抗血小板药和他汀类药物是否按时服用；",
                "3. 询问血压控制情况和康复训练情况；",
                "4. 提醒识别卒中症状（口角歪斜、肢体无力、言语不清），出现时立即拨打120。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(7, "出院1周电话随访"),
            StepSpec(30, "出院1个月电话随访"),
            StepSpec(90, "出院3个月电话随访"),
        ),
    ),
]

PLANS += [
    PlanSpec(
        name="慢阻肺及肺炎出院随访",
        department="RESP",
        questionnaire="discharge",
        rules={"diagnosis_prefixes": ["J44", "J18"], "min_age": 40},
        script="\n".join(
            (
                _opening("呼吸内科"),
                "1. 询问咳嗽、咳痰、气喘较出院时有无加重，痰的颜色和量；",
                "2. 询问有无发热，活动后气短程度；",
                "3. 核对吸入剂使用方法是否正确，用药后是否漱口；",
                "4. 提醒戒烟、注意保暖，坚持缩唇呼吸和腹式呼吸锻炼。",
                "如出现高热、口唇发紫或静息时明显气喘，请建议立即就诊。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(7, "出院1周电话随访", "重点询问症状变化和吸入剂使用。"),
            StepSpec(30, "出院1个月电话随访", "提醒门诊复查胸部CT和肺功能。"),
        ),
    ),
    PlanSpec(
        name="化疗后随访",
        department="ONCO",
        questionnaire="discharge",
        rules={"surgery_codes": ["99.25"]},
        script="\n".join(
            (
                _opening("肿瘤科"),
                "1. 询问化疗后恶心、呕吐、食欲和进食情况；",
                "2. 询问有无发热、口腔溃疡、腹泻，乏力程度；",
                "3. 提醒化疗后第7–14天复查血常规（白细胞最低期）；",
                "4. 确认下一周期化疗的入院时间。",
                "如体温超过38℃或白细胞明显降低，请通知主管医生并建议尽快返院。",
                _CLOSING,
            )
        ),
        steps=(
            StepSpec(3, "化疗后第3天电话随访", "重点询问胃肠道反应。"),
            StepSpec(10, "化疗后第10天血常规提醒", "询问血常规复查结果，有无发热。"),
            StepSpec(19, "下一周期化疗提醒", "确认下一周期入院时间，询问体力状况。"),
        ),
    ),
]

# What ``careloop demo`` prints next to each login (Chinese / English).
LOGIN_ROLES: dict[str, str] = {
    "admin": "系统管理员 · administrator",
    "nurse_cardio": "心内科随访护士 · follow-up nurse, cardiology",
    "nurse_ortho": "骨科随访护士 · follow-up nurse, orthopaedics",
    "supervisor": "随访中心班长 · supervisor, follow-up center",
    "doctor_cardio": "心内科医生 · doctor, cardiology",
    "leader": "院领导（只读）· hospital leader (read-only)",
}
