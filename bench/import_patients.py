#!/usr/bin/env python
"""Benchmark of the patient import (F1.3): a 100,000-row discharge list into a fresh database.

    .venv/bin/python bench/import_patients.py [--rows 100000] [--keep]

Generates a deterministic xlsx (realistic Chinese names, ID numbers with check digits, phones in the
forms hospital exports use, text and real dates, ~1 % bad rows), imports it into a fresh SQLite
database in a temporary directory (or into ``DATABASE_URL`` when set), imports it a second time
(everything unchanged), and prints elapsed time, rows per second and the ratio to the reference
figure recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥建华建国建军国强志强志明海燕丹玲俊斌宇浩然子轩梓涵欣怡雨萱晨曦佳怡思远文博一鸣嘉怡诗涵"
DEPARTMENTS = [
    ("CARD", "心内科"), ("ORTH", "骨科"), ("NEUR", "神经内科"), ("GSUR", "普外科"),
    ("RESP", "呼吸内科"), ("ENDO", "内分泌科"), ("NEPH", "肾内科"), ("GAST", "消化内科"),
    ("ONCO", "肿瘤科"), ("OBGY", "妇产科"),
]  # fmt: skip
DIAGNOSES = [
    ("I21.901", "急性心肌梗死"), ("I25.103", "冠状动脉粥样硬化性心脏病"), ("S72.001", "股骨颈骨折"),
    ("I63.900", "脑梗死"), ("K80.201", "胆囊结石"), ("J18.900", "肺炎"), ("E11.900", "2型糖尿病"),
    ("N18.500", "慢性肾脏病5期"), ("K29.500", "慢性胃炎"), ("C34.900", "肺恶性肿瘤"), ("O80.000", "单胎顺产"),
]  # fmt: skip
RELATIONS = ["配偶", "儿子", "女儿", "父亲", "母亲", "兄弟", "姐妹", "朋友"]
CITIES = [
    "北京市朝阳区",
    "上海市浦东新区",
    "广州市天河区",
    "成都市武侯区",
    "杭州市西湖区",
    "武汉市洪山区",
]
HEADER = [
    "序号", "姓名", "性别", "出生日期", "身份证号", "联系电话", "家属姓名", "家属电话", "与患者关系",
    "就诊卡号", "病案号", "出院科室", "病区", "床号", "入院日期", "出院日期", "出院诊断", "诊断编码",
    "主治医生", "住院流水号", "地址",
]  # fmt: skip
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _check(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def _name(rng: random.Random) -> str:
    given = rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(SURNAMES) + given


def _phone(rng: random.Random, n: int) -> str:
    number = f"1{rng.choice('3578')}{rng.randrange(10**9):09d}"
    style = n % 5
    if style == 1:
        return f"+86 {number[:3]} {number[3:7]} {number[7:]}"
    if style == 2:
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return number


def rows(count: int, seed: int = 20240301):
    """Deterministic data rows (same ``count`` and ``seed`` → same rows)."""
    rng = random.Random(seed)
    used: set[str] = set()
    base = dt.datetime(2024, 1, 1, 8, 0)
    for n in range(1, count + 1):
        sex = rng.choice("男女")
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(365 * 75))
        seq = rng.randrange(100) * 10 + int(rng.choice("13579" if sex == "男" else "02468"))
        first17 = f"{rng.choice(['110101', '310104', '440106', '510107'])}{birth:%Y%m%d}{seq:03d}"
        while first17 in used:  # one ID number per person
            seq = (seq + 2) % 1000
            first17 = f"{first17[:14]}{seq:03d}"
        used.add(first17)
        id_number = first17 + _check(first17)
        if n % 100 == 0:  # ~1 % of rows carry an ID number with a wrong check digit
            id_number = first17 + ("0" if id_number[-1] != "0" else "1")
        admitted = base + dt.timedelta(minutes=rng.randrange(60 * 24 * 300))
        discharged = admitted + dt.timedelta(days=rng.randrange(2, 20), hours=rng.randrange(8))
        code, department = DEPARTMENTS[n % len(DEPARTMENTS)]
        icd, diagnosis = DIAGNOSES[n % len(DIAGNOSES)]
        # Dates come as real datetimes, or as text in the forms hospital systems write.
        discharge_cell: object = (
            discharged
            if n % 3 == 0
            else discharged.strftime(["%Y-%m-%d %H:%M", "%Y年%m月%d日"][n % 3 - 1])
        )
        yield [
            n,
            _name(rng),
            sex,
            birth.strftime("%Y/%m/%d") if n % 2 else birth,
            id_number,
            _phone(rng, n),
            _name(rng),
            _phone(rng, n + 1),
            rng.choice(RELATIONS),
            f"JZK{n:08d}",
            f"BA{n:08d}",
            department if n % 4 else code,
            f"{rng.randrange(1, 6)}病区",
            str(rng.randrange(1, 60)),
            admitted,
            discharge_cell,
            diagnosis,
            icd,
            _name(rng),
            f"ZY{2024000000 + n}",
            f"{rng.choice(CITIES)}{rng.randrange(1, 999)}号",
        ]


def write_workbook(path: Path, count: int) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("出院患者")
    sheet.append(["2024年出院患者随访名单"])
    sheet.append(HEADER)
    for values in rows(count):
        sheet.append(values)
    workbook.save(path)


def reference(kind: str) -> float | None:
    """A figure ``reference <kind>: N rows/s`` recorded in bench/README.md."""
    if not README.exists():
        return None
    pattern = rf"reference {kind}:\s*([\d,.]+)\s*rows/s"
    match = re.search(pattern, README.read_text(encoding="utf-8"))
    return float(match.group(1).replace(",", "")) if match else None


def _ratio(rate: float, reference_rate: float | None) -> str:
    if not reference_rate:
        return ""
    return f" ({rate / reference_rate:.2f}× the reference {reference_rate:,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="careloop-bench-"))
    os.environ["CARELOOP_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "careloop.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    from careloop.accounts.models import Department
    from careloop.patients.importing import import_file
    from careloop.patients.models import Encounter, Patient

    call_command("migrate", verbosity=0)
    for code, name in DEPARTMENTS:
        Department.objects.get_or_create(code=code, defaults={"name": name})

    path = workdir / "出院患者.xlsx"
    started = time.perf_counter()
    write_workbook(path, args.rows)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
          f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip

    wall_reference, cpu_reference = reference("elapsed"), reference("CPU")
    for label in ("first import", "re-import"):
        started, cpu = time.perf_counter(), time.process_time()
        outcome = import_file(path, file_name=path.name, acting_user=None)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        rate, cpu_rate = outcome.rows / elapsed, outcome.rows / cpu
        first = label == "first import"
        print(
            f"{label}: {outcome.rows:,} rows in {elapsed:.1f} s = {rate:,.0f} rows/s"
            f"{_ratio(rate, wall_reference) if first else ''}; "
            f"CPU {cpu:.1f} s = {cpu_rate:,.0f} rows/s{_ratio(cpu_rate, cpu_reference) if first else ''}"
            f" (created {outcome.created:,}, updated {outcome.updated:,}, "
            f"unchanged {outcome.unchanged:,}, rejected {len(outcome.rejected):,})"
        )
    print(
        f"database: {Patient.objects.count():,} patients, {Encounter.objects.count():,} encounters"
    )
    if args.keep:
        print(f"kept {workdir}")
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
