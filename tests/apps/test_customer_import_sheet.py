"""Reading customer sheets: header mapping, row checks with Excel's row numbers and
column letters, files that are no spreadsheet. No database here."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from apps.customer_sheet import (
    AccountManagers,
    CellError,
    Column,
    CustomerRow,
    Field,
    Phone,
    RejectedRow,
    RowError,
    RowReader,
    SheetError,
    map_headers,
    preview,
    read_customers,
    split_phones,
)

MANAGERS = AccountManagers([(7, "wang", "王芳"), (8, "li1", "李明"), (9, "li2", "李明")])


def xlsx(*rows: list[Any]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def patch_sheet_xml(data: bytes, edit: Any) -> bytes:
    """The workbook with its first sheet's XML passed through ``edit``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = edit(content.decode()).encode()
            target.writestr(item, content)
    return out.getvalue()


def read(data: bytes, **options: Any) -> list[CustomerRow | RejectedRow]:
    return list(read_customers(io.BytesIO(data), managers=MANAGERS, **options))


def reasons(row: CustomerRow | RejectedRow) -> list[str]:
    assert isinstance(row, RejectedRow), row
    return [str(error) for error in row.errors]


# ---- header mapping ---------------------------------------------------------------------


def test_chinese_and_english_headers_map_to_fields_and_unknown_ones_become_custom() -> None:
    mapping = map_headers(["客户名称", "手机", "办公电话", "集团编号", "Group Name", "VIP等级",
                           "客户经理", "职务", "客户编号", "爱好", None, "e-mail"])

    assert mapping.as_dict() == {
        "客户名称": "name", "手机": "phone", "办公电话": "phone", "集团编号": "group_code",
        "Group Name": "group_name", "VIP等级": "vip_level", "客户经理": "account_manager",
        "职务": "title", "客户编号": "external_id", "爱好": "custom", "e-mail": "custom",
    }
    # The empty header (column K) is left out; letters are Excel's.
    assert [column.letter for column in mapping.columns][-2:] == ["J", "L"]


def test_header_spelling_is_forgiving() -> None:
    mapping = map_headers(["*姓名", " vip level ", "ACCOUNT_MANAGER", "联系电话：", "外部编号"])
    assert [column.field for column in mapping.columns] == [
        Field.NAME, Field.VIP_LEVEL, Field.ACCOUNT_MANAGER, Field.PHONE, Field.EXTERNAL_ID]


def test_a_second_column_for_a_single_field_becomes_custom() -> None:
    mapping = map_headers(["姓名", "name"])
    assert mapping.columns == (Column(0, "姓名", Field.NAME), Column(1, "name", Field.CUSTOM))


def test_an_explicit_mapping_overrides_the_guess() -> None:
    mapping = map_headers(["单位", "联系人", "备注"],
                          {"单位": "group_name", "联系人": Field.NAME, "备注": "ignore"})
    assert mapping.as_dict() == {"单位": "group_name", "联系人": "name", "备注": "ignore"}


def test_an_explicit_mapping_to_no_field_is_refused() -> None:
    with pytest.raises(SheetError) as error:
        map_headers(["单位"], {"单位": "company"})
    assert str(error.value) == (
        "unknown field 'company' for column '单位' (choose from name, phone, external_id, "
        "group_code, group_name, vip_level, account_manager, title, custom, ignore)"
    )


# ---- phone cells --------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "numbers"), [
    ("13800138000", ["13800138000"]),
    ("13800138000,13900139000", ["13800138000", "13900139000"]),
    ("13800138000；13900139000、010-88886666", ["13800138000", "13900139000", "01088886666"]),
    ("13800138000 / 0755 2345 6789", ["13800138000", "075523456789"]),
    ("13800138000 13900139000", ["13800138000", "13900139000"]),
    ("010 8888 6666", ["01088886666"]),
    ("+86 138 0013 8000", ["13800138000"]),
    ("4008123123", ["4008123123"]),
])
def test_one_cell_may_hold_several_numbers(cell: str, numbers: list[str]) -> None:
    assert split_phones(cell) == numbers


def test_a_local_number_needs_an_area_code_unless_one_is_configured() -> None:
    with pytest.raises(CellError) as error:
        split_phones("88886666")
    assert str(error.value) == (
        "invalid phone number '88886666': a local number needs its area code")
    assert split_phones("88886666", default_area_code="010") == ["01088886666"]


@given(st.text(max_size=80))
def test_a_phone_cell_raises_only_cell_errors(text: str) -> None:
    try:
        numbers = split_phones(text)
    except CellError:
        return
    assert all(number.isdigit() for number in numbers)


# ---- rows ------------------------------------------------------------------------------------


def test_rows_parse_into_customers_with_all_their_fields() -> None:
    rows = read(xlsx(
        ["客户名称", "手机", "办公电话", "集团编号", "集团名称", "VIP等级", "客户经理", "职务",
         "外部编号", "生日", "积分"],
        ["张三", "13800138000, 13900139000", "010 8888 6666", 10086, "某某集团", "VIP3", "wang",
         "总经理", 1001, datetime(1980, 5, 6), 12.5],
        ["李四", 13700137000.0, None, None, None, 2.0, "王芳", None, None, None, 3],
    ))

    assert rows == [
        CustomerRow(row=2, name="张三",
                    phones=(Phone("13800138000", "手机"), Phone("13900139000", "手机"),
                            Phone("01088886666", "办公电话")),
                    external_id="1001", group_code="10086", group_name="某某集团", vip_level=3,
                    account_manager_id=7, title="总经理",
                    custom_fields={"生日": "1980-05-06 00:00:00", "积分": 12.5}),
        CustomerRow(row=3, name="李四", phones=(Phone("13700137000", "手机"),), vip_level=2,
                    account_manager_id=7, custom_fields={"积分": 3}),
    ]


def test_each_bad_cell_is_reported_by_row_column_and_reason_and_good_rows_still_come() -> None:
    rows = read(xlsx(
        ["姓名", "手机", "VIP等级", "客户经理"],
        [None, "12345", "gold", "nobody"],
        ["好客户", "13800138000", 1, "li1"],
        [],  # blank rows are skipped but still counted in Excel's numbering
        ["坏号码", "138001380001", -1, "李明"],
        ["王五", "13900139000", 2, "wang"],
    ))

    assert [type(row).__name__ for row in rows] == [
        "RejectedRow", "CustomerRow", "RejectedRow", "CustomerRow"]
    assert reasons(rows[0]) == [
        "row 2, column A (姓名): missing name",
        "row 2, column B (手机): invalid phone number '12345': "
        "a short service number is no customer's number",
        "row 2, column C (VIP等级): unknown VIP level 'gold': give one of "
        "钻石卡, 金卡, 银卡, 普通 or a whole number 0 to 99",
        "row 2, column D (客户经理): unknown account manager 'nobody'",
    ]
    assert reasons(rows[2]) == [
        "row 5, column B (手机): invalid phone number '138001380001': "
        "not a mobile, fixed-line, 400/800 or international number",
        "row 5, column C (VIP等级): unknown VIP level '-1': give one of "
        "钻石卡, 金卡, 银卡, 普通 or a whole number 0 to 99",
        "row 5, column D (客户经理): account manager '李明' is ambiguous: give the username",
    ]
    assert rows[2].values == ("坏号码", "138001380001", -1, "李明")
    assert [row.row for row in rows] == [2, 3, 5, 6]


def test_duplicates_within_the_file_are_refused_after_the_first() -> None:
    rows = read(xlsx(
        ["客户编号", "姓名", "手机", "电话"],
        ["A1", "张三", "13800138000", None],
        ["A1", "张三丰", "13900139000", None],  # same external id
        ["A2", "李四", None, "138-0013-8000"],  # same number, written another way
        ["A3", "王五", "13700137000", "13700137000"],  # twice in one row is one number
    ))

    assert reasons(rows[1]) == ["row 3, column A (客户编号): external id 'A1' is also on row 2"]
    assert reasons(rows[2]) == ["row 4, column D (电话): phone 13800138000 is also on row 2"]
    assert isinstance(rows[3], CustomerRow)
    assert rows[3].phones == (Phone("13700137000", "手机"),)


def test_a_refused_row_does_not_claim_its_numbers() -> None:
    rows = read(xlsx(["姓名", "手机"], [None, "13800138000"], ["张三", "13800138000"]))
    assert isinstance(rows[0], RejectedRow) and isinstance(rows[1], CustomerRow)


def test_a_row_needs_a_phone_or_an_external_id_to_be_found_again() -> None:
    rows = read(xlsx(["姓名", "手机", "外部编号"], ["张三", None, None], ["李四", None, "X9"]))
    assert reasons(rows[0]) == [
        "row 2, column B (手机): no phone number and no external id: the customer could not "
        "be recognised when the sheet is imported again"]
    assert isinstance(rows[1], CustomerRow) and rows[1].phones == ()


def test_values_longer_than_their_column_are_refused() -> None:
    rows = read(xlsx(["姓名", "手机", "集团编号"], ["张" * 201, "13800138000", "G" * 33]))
    assert reasons(rows[0]) == ["row 2, column A (姓名): longer than 200 characters",
                                "row 2, column C (集团编号): longer than 32 characters"]


def test_vip_levels_are_read_in_the_forms_sheets_use() -> None:
    cells = [3, 3.0, "3", "VIP3", "v 3", "3级", "vip10"]
    rows = read(xlsx(["姓名", "手机", "VIP"],
                     *[[f"客户{i}", f"1380013800{i}", cell] for i, cell in enumerate(cells)]))
    assert [row.vip_level for row in rows if isinstance(row, CustomerRow)] == [
        3, 3, 3, 3, 3, 3, 10]


def test_header_row_may_follow_blank_rows_and_row_numbers_stay_excels() -> None:
    rows = read(xlsx([], [], ["name", "phone"], ["Zhang San", "13800138000"]))
    assert [row.row for row in rows] == [4]


def test_formula_cells_give_the_value_excel_saved_never_a_computed_one() -> None:
    data = xlsx(["姓名", "手机", "备注"], ["张三", "=A1", "=1+1"], ["李四", "=A1", "x"])
    # As Excel saves it: the formula and its cached result; no cache for the second row.
    data = patch_sheet_xml(data, lambda xml: xml.replace(
        "<c r=\"B2\"><f>A1</f><v /></c>", "<c r=\"B2\"><f>A1</f><v>13800138000</v></c>"
    ).replace("<c r=\"C2\"><f>1+1</f><v /></c>", "<c r=\"C2\"><f>1+1</f><v>5</v></c>"))

    rows = read(data)

    assert isinstance(rows[0], CustomerRow)
    assert rows[0].phones == (Phone("13800138000", "手机"),)
    assert rows[0].custom_fields == {"备注": 5}  # what Excel cached, not 2
    assert reasons(rows[1])[0].startswith("row 3, column B (手机): no phone number")


def test_rows_past_a_wrong_size_in_the_file_are_still_read() -> None:
    data = xlsx(["姓名", "手机"], *[[f"客户{i}", f"1380013800{i}"] for i in range(5)])
    data = patch_sheet_xml(data, lambda xml: re.sub(r'<dimension ref="[^"]*"',
                                                    '<dimension ref="A1:B2"', xml))
    assert [row.row for row in read(data)] == [2, 3, 4, 5, 6]


# ---- files that cannot be read ------------------------------------------------------------


def zip_without_workbook() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    return out.getvalue()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"name,phone\nZhang,13800138000\n", "not an .xlsx spreadsheet (not a zip file)"),
    (zip_without_workbook(),
     "not an .xlsx spreadsheet (a zip file without an Excel workbook in it)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500),
     "this is an old .xls file; save it as .xlsx in Excel first"),
    (xlsx(), "no header row: the first sheet is empty"),
    (xlsx(["手机", "VIP"], ["13800138000", 1]),
     "no column for the customer name (a header such as 客户名称, 姓名 or name)"),
])
def test_a_file_that_cannot_be_read_is_one_clear_error(
        tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "customers.xlsx"  # the name says .xlsx whatever the content is
    path.write_bytes(content)
    with pytest.raises(SheetError) as error:
        list(read_customers(path))
    assert str(error.value) == message


# ---- preview ------------------------------------------------------------------------------


def test_preview_shows_the_mapping_and_the_first_rows_checked() -> None:
    data = xlsx(["姓名", "手机", "备注"],
                *[[f"客户{i}", f"1380013800{i}", None] for i in range(9)], [None, "1", None])
    shown = preview(io.BytesIO(data), n=3, managers=MANAGERS)
    assert shown.mapping.as_dict() == {"姓名": "name", "手机": "phone", "备注": "custom"}
    assert [row.row for row in shown.rows] == [2, 3, 4]
    assert shown.rows_estimate == 10
    assert shown.headers == ("姓名", "手机", "备注")


def test_preview_of_a_sheet_without_a_name_column_shows_the_mapping_to_fix() -> None:
    data = xlsx(["单位", "人员", "手机"], ["某公司", "张三", "13800138000"])
    shown = preview(io.BytesIO(data))
    assert shown.rows == ()
    assert shown.mapping.as_dict() == {"单位": "custom", "人员": "custom", "手机": "phone"}

    fixed = preview(io.BytesIO(data), mapping={"单位": "group_name", "人员": "name"})
    assert fixed.rows == (CustomerRow(row=2, name="张三", phones=(Phone("13800138000", "手机"),),
                                      group_name="某公司"),)


# ---- properties ------------------------------------------------------------------------------

cells = st.one_of(st.none(), st.text(max_size=30), st.integers(-10**15, 10**15),
                  st.floats(allow_nan=True), st.booleans(),
                  st.datetimes(min_value=datetime(1900, 1, 1)))


@settings(max_examples=300)
@given(st.lists(st.lists(cells, max_size=6), max_size=8))
def test_any_cell_values_give_a_customer_a_refusal_or_nothing(rows: list[list[Any]]) -> None:
    mapping = map_headers(["姓名", "手机", "VIP", "客户经理", "外部编号", "备注"])
    reader = RowReader(mapping, MANAGERS)
    for number, values in enumerate(rows, start=2):
        checked = reader.read(number, values)
        if isinstance(checked, RejectedRow):
            assert checked.errors and all(isinstance(e, RowError) for e in checked.errors)
            assert all(e.row == number for e in checked.errors)
        elif isinstance(checked, CustomerRow):
            assert checked.name and (checked.phones or checked.external_id)


mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.text(st.characters(categories=["L"]), min_size=1, max_size=10),
                          mobiles), min_size=1, max_size=20, unique_by=lambda r: r[1]))
def test_a_written_sheet_reads_back_row_for_row(customers: list[tuple[str, str]]) -> None:
    rows = read(xlsx(["name", "mobile"], *[[name, number] for name, number in customers]))
    assert [(row.row, row.name, row.phones) for row in rows if isinstance(row, CustomerRow)] == [
        (i, name.strip(), (Phone(number, "mobile"),))
        for i, (name, number) in enumerate(customers, start=2)
    ]
