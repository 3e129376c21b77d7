"""Sample follow-up questionnaires for the demo hospital and for new installations.

The question texts are data read to patients, so they are in Chinese. Codes match what the demo
plans look for (careloop/demo/data.py): ``pci``, ``tka``, ``diabetes``, ``postpartum``, plus the
hospital-wide ``discharge`` (general post-discharge) and ``satisfaction`` (1–5 ratings) surveys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from careloop.accounts.models import Department, User
from careloop.surveys import services
from careloop.surveys.models import Questionnaire


def _options(*items: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Options from (value, label[, score[, alert]]) tuples."""
    result = []
    for item in items:
        option: dict[str, Any] = {"value": item[0], "label": item[1]}
        if len(item) > 2 and item[2] is not None:
            option["score"] = item[2]
        if len(item) > 3 and item[3]:
            option["alert"] = True
        result.append(option)
    return result


SATISFACTION_SCALE = {"min": 1, "max": 5, "min_label": "非常不满意", "max_label": "非常满意"}

PCI = {
    "questions": [
        {
            "key": "chest_pain",
            "type": "single",
            "text": "出院后有没有出现胸痛、胸闷？",
            "required": True,
            "help": "风险评分：分数越高，越需要医生尽快关注。",
            "options": _options(
                ("none", "没有", 0),
                ("exertion", "活动后偶尔有，休息可缓解", 2),
                ("rest", "休息时也有", 5, True),
            ),
        },
        {
            "key": "chest_pain_duration",
            "type": "single",
            "text": "每次胸痛大约持续多长时间？",
            "required": True,
            "options": _options(
                ("lt5", "5分钟以内", 0),
                ("5to15", "5到15分钟", 2),
                ("gt15", "超过15分钟", 5, True),
            ),
            "show_if": {"key": "chest_pain", "op": "in", "value": ["exertion", "rest"]},
        },
        {
            "key": "puncture_site",
            "type": "single",
            "text": "手腕或大腿根部穿刺的地方现在怎么样？",
            "required": True,
            "options": _options(
                ("normal", "正常", 0),
                ("bruise", "有轻微淤青", 1),
                ("hematoma", "有肿块、出血或明显疼痛", 3, True),
            ),
        },
        {
            "key": "antiplatelet",
            "type": "yes_no",
            "text": "阿司匹林和氯吡格雷（或替格瑞洛）是否每天按医嘱服用？",
            "required": True,
            "labels": {"yes": "每天按时服用", "no": "没有按时服用"},
            "score": {"yes": 0, "no": 4},
            "alert": "no",
        },
        {
            "key": "missed_reason",
            "type": "single",
            "text": "没有按时服药的主要原因是？",
            "required": True,
            "options": _options(
                ("forgot", "忘记服药"),
                ("bleeding", "出现出血等不良反应"),
                ("stopped", "自己觉得好了就停了"),
                ("cost", "药费负担重"),
                ("other", "其他原因"),
            ),
            "show_if": {"key": "antiplatelet", "op": "eq", "value": False},
        },
        {
            "key": "bleeding",
            "type": "multiple",
            "text": "服药期间有没有以下出血情况？（可多选）",
            "required": False,
            "options": _options(
                ("gums", "牙龈出血", 1),
                ("skin", "皮肤瘀斑", 1),
                ("black_stool", "黑便", 3, True),
                ("urine", "尿中带血", 3, True),
            ),
        },
        {
            "key": "temperature",
            "type": "number",
            "text": "最近测量的体温是多少？",
            "required": True,
            "min": 35,
            "max": 42,
            "unit": "°C",
            "alert_above": 37.3,
        },
        {
            "key": "sbp",
            "type": "number",
            "text": "最近一次血压的高压（收缩压）是多少？",
            "required": False,
            "min": 60,
            "max": 260,
            "unit": "mmHg",
            "integer": True,
            "alert_below": 90,
            "alert_above": 160,
        },
        {
            "key": "dbp",
            "type": "number",
            "text": "低压（舒张压）是多少？",
            "required": False,
            "min": 30,
            "max": 160,
            "unit": "mmHg",
            "integer": True,
            "alert_above": 100,
        },
        {
            "key": "recheck_booked",
            "type": "yes_no",
            "text": "出院后1个月的门诊复查（血常规、肝功能、血脂）预约了吗？",
            "required": True,
            "labels": {"yes": "已预约", "no": "还没有"},
        },
        {
            "key": "recheck_date",
            "type": "date",
            "text": "预约的复查日期是哪一天？",
            "required": False,
            "show_if": {"key": "recheck_booked", "op": "eq", "value": True},
        },
        {
            "key": "other",
            "type": "text",
            "text": "还有其他不舒服或需要医生帮助的地方吗？",
            "required": False,
            "max_length": 500,
        },
    ]
}

TKA = {
    "questions": [
        {
            "key": "pain",
            "type": "rating",
            "text": "现在膝关节疼痛的程度是多少分？（0分不痛，10分最痛）",
            "required": True,
            "scale": {"min": 0, "max": 10, "min_label": "不痛", "max_label": "最痛"},
            "alert_above": 6,
        },
        {
            "key": "painkillers",
            "type": "yes_no",
            "text": "现在还需要吃止痛药吗？",
            "required": True,
        },
        {
            "key": "wound_bleeding",
            "type": "yes_no",
            "text": "伤口有没有渗血、渗液？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
        },
        {
            "key": "wound_red",
            "type": "yes_no",
            "text": "伤口周围有没有红肿、发热？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
        },
        {
            "key": "fever",
            "type": "yes_no",
            "text": "出院后有没有发烧？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
        },
        {
            "key": "temperature",
            "type": "number",
            "text": "最高体温是多少？",
            "required": True,
            "min": 35,
            "max": 42,
            "unit": "°C",
            "alert_above": 38,
            "show_if": {"key": "fever", "op": "eq", "value": True},
        },
        {
            "key": "calf_swelling",
            "type": "yes_no",
            "text": "小腿有没有肿胀、疼痛或发硬？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "help": "警惕下肢深静脉血栓。",
            "alert": "yes",
        },
        {
            "key": "flexion",
            "type": "number",
            "text": "膝关节现在能弯曲到多少度？",
            "required": False,
            "min": 0,
            "max": 150,
            "unit": "°",
            "integer": True,
            "alert_below": 90,
        },
        {
            "key": "rehab",
            "type": "single",
            "text": "康复锻炼（股四头肌收缩、屈膝练习）做得怎么样？",
            "required": True,
            "options": _options(
                ("daily", "每天按计划做"),
                ("sometimes", "偶尔做"),
                ("none", "基本没做", None, True),
            ),
        },
        {
            "key": "rehab_barriers",
            "type": "multiple",
            "text": "影响锻炼的原因有哪些？（可多选）",
            "required": True,
            "options": _options(
                ("pain", "太疼"),
                ("unsure", "不会做、怕做错"),
                ("no_help", "没人帮忙"),
                ("no_time", "没时间"),
                ("other", "其他"),
            ),
            "show_if": {"key": "rehab", "op": "ne", "value": "daily"},
        },
        {
            "key": "walking",
            "type": "single",
            "text": "现在行走的方式是？",
            "required": True,
            "options": _options(
                ("independent", "可以独立行走"),
                ("crutch", "需要拐杖"),
                ("walker", "需要助行器"),
                ("bed", "基本卧床", None, True),
            ),
        },
    ]
}

DIABETES = {
    "questions": [
        {
            "key": "fasting_glucose",
            "type": "number",
            "text": "最近一次空腹血糖是多少？",
            "required": True,
            "min": 1,
            "max": 33.3,
            "unit": "mmol/L",
            "alert_below": 3.9,
            "alert_above": 13.9,
        },
        {
            "key": "postprandial_glucose",
            "type": "number",
            "text": "餐后2小时血糖是多少？（没测可不填）",
            "required": False,
            "min": 1,
            "max": 33.3,
            "unit": "mmol/L",
            "alert_above": 16.7,
        },
        {
            "key": "hypo",
            "type": "yes_no",
            "text": "最近一周有没有出现低血糖（心慌、出冷汗、手抖、饥饿感）？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "score": {"yes": 0, "no": 2},
            "alert": "yes",
        },
        {
            "key": "hypo_count",
            "type": "number",
            "text": "一周内发生了几次？",
            "required": True,
            "min": 1,
            "max": 50,
            "unit": "次",
            "integer": True,
            "alert_above": 2,
            "show_if": {"key": "hypo", "op": "eq", "value": True},
        },
        {
            "key": "hypo_action",
            "type": "single",
            "text": "发生低血糖时是怎么处理的？",
            "required": True,
            "options": _options(
                ("sugar", "马上吃糖果、喝含糖饮料"),
                ("hospital", "去医院处理"),
                ("nothing", "没有处理", None, True),
            ),
            "show_if": {"key": "hypo", "op": "eq", "value": True},
        },
        {
            "key": "insulin",
            "type": "yes_no",
            "text": "目前是否在使用胰岛素？",
            "required": True,
            "labels": {"yes": "在用", "no": "没有用"},
        },
        {
            "key": "insulin_adherence",
            "type": "single",
            "text": "胰岛素是否按时按量注射？",
            "required": True,
            "options": _options(
                ("always", "每次按时按量", 3),
                ("sometimes", "偶尔漏打", 1),
                ("often", "经常漏打", 0, True),
                ("stopped", "自己停用了", 0, True),
            ),
            "show_if": {"key": "insulin", "op": "eq", "value": True},
        },
        {
            "key": "oral_drugs",
            "type": "single",
            "text": "口服降糖药是否按时服用？",
            "required": True,
            "options": _options(
                ("always", "按时服用", 3),
                ("sometimes", "偶尔漏服", 1),
                ("often", "经常漏服", 0, True),
                ("none", "没有口服药", None),
            ),
        },
        {
            "key": "diet",
            "type": "single",
            "text": "饮食控制情况如何？",
            "required": True,
            "options": _options(
                ("strict", "严格按糖尿病饮食", 3),
                ("mostly", "基本控制", 2),
                ("poor", "基本没控制", 0),
            ),
        },
        {
            "key": "exercise",
            "type": "single",
            "text": "每周运动（快走、太极等30分钟以上）几次？",
            "required": True,
            "options": _options(
                ("five_plus", "5次及以上", 2),
                ("one_to_four", "1到4次", 1),
                ("none", "几乎不运动", 0),
            ),
        },
        {
            "key": "feet",
            "type": "yes_no",
            "text": "双脚有没有破溃、麻木或发凉？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
        },
    ]
}

POSTPARTUM = {
    "questions": [
        {
            "key": "delivery",
            "type": "single",
            "text": "这次分娩方式是？",
            "required": True,
            "options": _options(("vaginal", "顺产"), ("cesarean", "剖宫产")),
        },
        {
            "key": "temperature",
            "type": "number",
            "text": "妈妈最近测量的体温是多少？",
            "required": True,
            "min": 35,
            "max": 42,
            "unit": "°C",
            "alert_above": 37.5,
        },
        {
            "key": "lochia",
            "type": "single",
            "text": "恶露（阴道出血）情况怎么样？",
            "required": True,
            "options": _options(
                ("normal", "量少，颜色逐渐变淡"),
                ("period", "和月经量差不多"),
                ("heavy", "量多或有大血块", None, True),
                ("smell", "有异味", None, True),
            ),
        },
        {
            "key": "cesarean_wound",
            "type": "single",
            "text": "剖宫产腹部伤口情况？",
            "required": True,
            "options": _options(
                ("good", "愈合良好"),
                ("red", "红肿、渗液", None, True),
                ("open", "伤口裂开", None, True),
            ),
            "show_if": {"key": "delivery", "op": "eq", "value": "cesarean"},
        },
        {
            "key": "perineum",
            "type": "single",
            "text": "会阴伤口情况？",
            "required": True,
            "options": _options(
                ("good", "不痛或轻微疼痛"),
                ("painful", "疼痛明显、红肿", None, True),
            ),
            "show_if": {"key": "delivery", "op": "eq", "value": "vaginal"},
        },
        {
            "key": "breastfeeding",
            "type": "single",
            "text": "现在的喂养方式是？",
            "required": True,
            "options": _options(
                ("exclusive", "纯母乳喂养"), ("mixed", "混合喂养"), ("formula", "人工喂养")
            ),
        },
        {
            "key": "breast_problem",
            "type": "yes_no",
            "text": "乳房有没有红肿、硬块、疼痛或发热？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
            "alert": "yes",
            "show_if": {"key": "breastfeeding", "op": "in", "value": ["exclusive", "mixed"]},
        },
        {
            "key": "mood",
            "type": "single",
            "text": "最近两周心情怎么样？",
            "required": True,
            "options": _options(
                ("good", "心情不错"),
                ("low_sometimes", "偶尔情绪低落"),
                ("low_often", "经常低落、爱哭、睡不着", None, True),
                ("harm", "有伤害自己或宝宝的想法", None, True),
            ),
        },
        {
            "key": "baby_feeding",
            "type": "single",
            "text": "宝宝吃奶情况怎么样？",
            "required": True,
            "options": _options(
                ("good", "吃得好，每天尿湿6片以上尿布"),
                ("fair", "一般"),
                ("poor", "吃得少、吸吮无力", None, True),
            ),
        },
        {
            "key": "baby_jaundice",
            "type": "yes_no",
            "text": "宝宝的皮肤或眼白发黄吗？",
            "required": True,
            "labels": {"yes": "发黄", "no": "不黄"},
            "alert": "yes",
        },
        {
            "key": "baby_weight",
            "type": "number",
            "text": "宝宝最近一次称的体重是多少？（没称可不填）",
            "required": False,
            "min": 1,
            "max": 10,
            "unit": "kg",
        },
        {
            "key": "checkup_42",
            "type": "yes_no",
            "text": "产后42天母婴复查预约了吗？",
            "required": True,
            "labels": {"yes": "已预约", "no": "还没有"},
        },
    ]
}

DISCHARGE = {
    "questions": [
        {
            "key": "recovery",
            "type": "single",
            "text": "出院后总体恢复得怎么样？",
            "required": True,
            "options": _options(
                ("good", "恢复得很好"),
                ("fair", "一般"),
                ("worse", "比出院时差", None, True),
            ),
        },
        {
            "key": "symptoms",
            "type": "yes_no",
            "text": "有没有新的不舒服？",
            "required": True,
            "labels": {"yes": "有", "no": "没有"},
        },
        {
            "key": "symptoms_detail",
            "type": "text",
            "text": "请说一下哪里不舒服。",
            "required": True,
            "max_length": 500,
            "show_if": {"key": "symptoms", "op": "eq", "value": True},
        },
        {
            "key": "medication",
            "type": "yes_no",
            "text": "出院带的药是否按医嘱服用？",
            "required": True,
            "labels": {"yes": "按医嘱服用", "no": "没有按时服用"},
            "alert": "no",
        },
        {
            "key": "recheck",
            "type": "yes_no",
            "text": "知道什么时候回医院复查吗？",
            "required": True,
            "labels": {"yes": "知道", "no": "不清楚"},
        },
    ]
}


def _rating(key: str, text: str) -> dict[str, Any]:
    return {
        "key": key,
        "type": "rating",
        "text": text,
        "required": True,
        "scale": SATISFACTION_SCALE,
        "scored": True,
        "alert_below": 3,
    }


SATISFACTION = {
    "questions": [
        _rating("doctor", "您对医生的诊疗服务满意吗？"),
        _rating("nurse", "您对护士的护理服务满意吗？"),
        _rating("environment", "您对病房环境和卫生满意吗？"),
        _rating("cost", "您对医疗费用的透明度满意吗？"),
        _rating("food", "您对医院的饭菜满意吗？"),
        _rating("overall", "总体来说，您对这次住院满意吗？"),
        {
            "key": "unhappy_reason",
            "type": "text",
            "text": "请告诉我们哪里让您不满意，我们会认真改进。",
            "required": False,
            "max_length": 500,
            "show_if": {"key": "overall", "op": "lte", "value": 2},
        },
        {
            "key": "recommend",
            "type": "yes_no",
            "text": "您愿意向亲友推荐我院吗？",
            "required": True,
            "labels": {"yes": "愿意", "no": "不愿意"},
        },
        {
            "key": "suggestion",
            "type": "text",
            "text": "您还有什么意见和建议？",
            "required": False,
            "max_length": 500,
        },
    ]
}


@dataclass(frozen=True)
class Sample:
    code: str
    title: str
    description: str
    department_code: str | None  # None: hospital-wide
    definition: dict[str, Any]


SAMPLES = [
    Sample(
        "pci",
        "PCI术后随访问卷",
        "冠脉支架植入术后第3、7、30天电话随访：胸痛、穿刺部位、双联抗血小板用药、体温、血压、复查。",
        "CARD",
        PCI,
    ),
    Sample(
        "tka",
        "膝关节置换术后随访问卷",
        "全膝关节置换术后随访：疼痛评分、伤口、发热、下肢血栓征象、屈膝角度、康复锻炼。",
        "ORTH",
        TKA,
    ),
    Sample(
        "diabetes",
        "2型糖尿病随访问卷",
        "血糖、低血糖、胰岛素和口服药依从性、饮食运动、足部检查；评分为自我管理得分。",
        "ENDO",
        DIABETES,
    ),
    Sample(
        "postpartum",
        "产后随访问卷",
        "产妇体温、恶露、伤口、母乳喂养、情绪，以及新生儿吃奶、黄疸、体重。",
        "OBST",
        POSTPARTUM,
    ),
    Sample("discharge", "出院随访通用问卷", "各科室通用的出院后随访。", None, DISCHARGE),
    Sample(
        "satisfaction",
        "住院患者满意度调查",
        "医生、护士、环境、费用、饮食、总体满意度，每项1–5分（按键1–5），总分为各项之和。",
        None,
        SATISFACTION,
    ),
]


def ensure_sample_questionnaires(*, acting_user: User | None = None) -> dict[str, Questionnaire]:
    """Create and publish the sample questionnaires that do not exist yet; code → Questionnaire.

    Idempotent: an existing questionnaire with a sample's code is returned untouched, so local
    edits made in the designer survive a re-run.
    """
    result: dict[str, Questionnaire] = {}
    departments = {d.code: d for d in Department.objects.all()}
    with transaction.atomic():
        for sample in SAMPLES:
            existing = Questionnaire.objects.filter(code=sample.code).first()
            if existing is not None:
                result[sample.code] = existing
                continue
            questionnaire = services.create_questionnaire(
                code=sample.code,
                title=sample.title,
                description=sample.description,
                department=departments.get(sample.department_code or ""),
                definition=sample.definition,
                acting_user=acting_user,
            )
            services.publish(questionnaire.versions.get(), acting_user=acting_user)
            result[sample.code] = questionnaire
    return result
