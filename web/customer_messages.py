"""UI strings of the customer pages and the customer import, in Chinese and English.

They join web.i18n's one catalogue (which base.html's navigation reads too); a key the
catalogue already has with another text is refused rather than silently changed.
"""

from __future__ import annotations

from apps.customer_reasons import Reason
from web.i18n import add_messages, translate

CUSTOMER_MESSAGES: dict[str, dict[str, str]] = {
    "nav.customers": {"zh": "客户管理", "en": "Customers"},
    "nav.customer_import": {"zh": "导入客户", "en": "Import customers"},
    "customers.title": {"zh": "客户管理", "en": "Customers"},
    "customers.search": {"zh": "搜索", "en": "Search"},
    "customers.search_hint": {"zh": "客户名称或电话号码", "en": "Name or phone number"},
    "customers.mine": {"zh": "我的客户", "en": "My customers"},
    "customers.colon": {"zh": "：", "en": ": "},  # between a heading and what it is about
    "customers.name": {"zh": "客户名称", "en": "Name"},
    "customers.title_field": {"zh": "职务", "en": "Title"},
    "customers.group": {"zh": "集团", "en": "Group"},
    "customers.phones": {"zh": "电话", "en": "Phones"},
    "customers.phone_label": {"zh": "标签", "en": "Label"},
    "customers.vip_level": {"zh": "VIP等级", "en": "VIP level"},
    "customers.account_manager": {"zh": "客户经理", "en": "Account manager"},
    "customers.custom_fields": {"zh": "自定义字段", "en": "Custom fields"},
    "customers.custom_fields_hint": {
        "zh": "每行一个，格式：名称=值", "en": "One per line: name=value"},
    "customers.contacts": {"zh": "沟通记录", "en": "Contact records"},
    "customers.contacts_empty": {"zh": "暂无沟通记录", "en": "No contact records"},
    "customers.add_contact": {"zh": "添加沟通记录", "en": "Add a contact record"},
    "customers.channel": {"zh": "渠道", "en": "Channel"},
    "customers.channel.phone": {"zh": "电话", "en": "Phone"},
    "customers.channel.sms": {"zh": "短信", "en": "SMS"},
    "customers.channel.visit": {"zh": "拜访", "en": "Visit"},
    "customers.channel.email": {"zh": "邮件", "en": "Email"},
    "customers.channel.other": {"zh": "其他", "en": "Other"},
    "customers.text": {"zh": "内容", "en": "Text"},
    "customers.agent": {"zh": "座席", "en": "Agent"},
    "customers.at": {"zh": "时间 (UTC)", "en": "Time (UTC)"},
    "customers.none": {"zh": "无", "en": "None"},
    "customers.empty": {"zh": "没有找到客户", "en": "No customers found"},
    "customers.total": {"zh": "共 {total} 位客户", "en": "{total} customers"},
    "customers.page": {"zh": "第 {page} / {pages} 页", "en": "Page {page} of {pages}"},
    "customers.previous": {"zh": "上一页", "en": "Previous"},
    "customers.next": {"zh": "下一页", "en": "Next"},
    "customers.view": {"zh": "查看", "en": "View"},
    "customers.edit": {"zh": "编辑", "en": "Edit"},
    "customers.edit_title": {"zh": "编辑客户", "en": "Edit customer"},
    "customers.save": {"zh": "保存", "en": "Save"},
    "customers.back": {"zh": "返回", "en": "Back"},
    "customers.remove": {"zh": "删除", "en": "Remove"},
    "customers.add_phone": {"zh": "添加电话", "en": "Add a phone"},
    "customers.saved": {"zh": "已保存", "en": "Saved"},
    "customers.contact_saved": {"zh": "沟通记录已添加", "en": "Contact record added"},
    "customers.save_failed": {"zh": "保存失败：{reason}", "en": "Not saved: {reason}"},
    "customers.not_found": {"zh": "客户不存在", "en": "No such customer"},
    "import.title": {"zh": "批量导入客户", "en": "Import customers"},
    "import.file": {"zh": "Excel 文件 (.xlsx)", "en": "Excel file (.xlsx)"},
    "import.upload": {"zh": "上传并预览", "en": "Upload and preview"},
    "import.max_size": {"zh": "文件不超过 {mb} MB", "en": "At most {mb} MB"},
    "import.too_large": {
        "zh": "文件过大：最大 {mb} MB", "en": "The file is too large: at most {mb} MB"},
    "import.no_file": {"zh": "请选择一个 .xlsx 文件", "en": "Choose an .xlsx file"},
    "import.unreadable": {
        "zh": "无法读取该文件，未导入任何数据：{reason}",
        "en": "The file cannot be read; nothing was imported: {reason}"},
    "import.mapping": {"zh": "列对应关系", "en": "Column mapping"},
    "import.header": {"zh": "表头", "en": "Header"},
    "import.field": {"zh": "导入为", "en": "Imports as"},
    "import.apply_mapping": {"zh": "应用对应关系", "en": "Apply mapping"},
    "import.preview": {"zh": "预览：每一行将如何导入", "en": "Preview: what each row will do"},
    "import.counts": {
        "zh": "共 {total} 行：新增 {new}，更新 {update}，无变化 {unchanged}，冲突 {conflict}，"
              "拒绝 {rejected}",
        "en": "{total} rows: {new} new, {update} to update, {unchanged} unchanged, "
              "{conflict} conflicts, {rejected} rejected"},
    "import.groups_created": {
        "zh": "将新建 {n} 个集团", "en": "{n} new groups will be created"},
    "import.show": {"zh": "显示", "en": "Show"},
    "import.filter.all": {"zh": "全部", "en": "All rows"},
    "import.filter.new": {"zh": "新增", "en": "New"},
    "import.filter.update": {"zh": "更新", "en": "Updates"},
    "import.filter.unchanged": {"zh": "无变化", "en": "Unchanged"},
    "import.filter.conflict": {"zh": "冲突", "en": "Conflicts"},
    "import.filter.rejected": {"zh": "拒绝", "en": "Rejected"},
    "import.empty_page": {"zh": "没有这样的行", "en": "No such rows"},
    "import.row": {"zh": "行号", "en": "Row"},
    "import.status": {"zh": "预计结果", "en": "What it will do"},
    "import.outcome.new": {"zh": "新增客户", "en": "New customer"},
    "import.outcome.update": {"zh": "更新：{changes}", "en": "Update: {changes}"},
    "import.outcome.unchanged": {"zh": "无变化", "en": "Unchanged"},
    "import.outcome.skip": {"zh": "跳过已存在的客户", "en": "Existing customer skipped"},
    "import.outcome.conflict": {
        "zh": "冲突：号码 {number} 属于已有客户“{existing}”，表中的名称是“{sheet}”",
        "en": "Conflict: {number} belongs to the existing customer “{existing}”; "
              "the sheet names “{sheet}”"},
    "import.outcome.rejected": {"zh": "拒绝：{reasons}", "en": "Rejected: {reasons}"},
    "import.list_separator": {"zh": "、", "en": ", "},
    **{f"import.change.{name}": texts for name, texts in {
        "name": {"zh": "名称", "en": "name"},
        "title": {"zh": "职务", "en": "title"},
        "vip_level": {"zh": "VIP等级", "en": "VIP level"},
        "account_manager": {"zh": "客户经理", "en": "account manager"},
        "group": {"zh": "集团", "en": "group"},
        "custom_fields": {"zh": "自定义字段", "en": "custom fields"},
        "external_id": {"zh": "外部编号", "en": "external id"},
        "phones": {"zh": "新号码", "en": "new numbers"},
    }.items()},
    "import.conflicts": {"zh": "冲突的处理", "en": "Conflicts"},
    "import.conflicts_hint": {
        "zh": "冲突是号码属于已有客户、但名称与表中不同的行。默认跳过，不做任何修改。",
        "en": "A conflict is a row whose number belongs to an existing customer with another "
              "name. By default it is skipped and nothing changes."},
    "import.conflicts_all": {"zh": "所有冲突", "en": "All conflicts"},
    "import.choice": {"zh": "处理方式", "en": "Action"},
    "import.choice.default": {"zh": "同“所有冲突”", "en": "As for all conflicts"},
    "import.choice.skip": {"zh": "跳过，不做修改", "en": "Skip: change nothing"},
    "import.choice.update": {
        "zh": "更新该客户（采用表中的名称和字段）",
        "en": "Update that customer (with the sheet's name and fields)"},
    "import.choice.add": {
        "zh": "新增客户（共用该号码）", "en": "Add a new customer sharing the number"},
    "import.save_choices": {"zh": "保存选择", "en": "Save the choices"},
    "import.checking": {"zh": "正在检查文件…", "en": "Checking the file…"},
    "import.bad_choice": {
        "zh": "“{name}”必须是以下之一：{choices}", "en": "'{name}' must be one of: {choices}"},
    "import.bad_row": {"zh": "“{row}”不是行号", "en": "'{row}' is no row number"},
    "import.bad_conflict_rows": {
        "zh": "“conflict_rows”必须把行号对应到以下之一：{choices}",
        "en": "'conflict_rows' must map row numbers to one of: {choices}"},
    "import.still_checking": {
        "zh": "文件仍在检查中，请在检查完成后继续",
        "en": "The file is still being checked; go on when the check is done"},
    "import.check_failed": {
        "zh": "文件检查失败，无法导入：{reason}",
        "en": "The file could not be checked and cannot be imported: {reason}"},
    "import.no_name_column": {
        "zh": "没有客户名称列：请在对应关系中选择一列作为“客户名称”",
        "en": "No name column: choose one in the mapping as “name”"},
    "import.existing": {
        "zh": "已存在的客户（冲突除外）", "en": "Existing customers (not conflicts)"},
    "import.existing.update": {"zh": "更新", "en": "Update them"},
    "import.existing.skip": {"zh": "跳过", "en": "Skip them"},
    "import.start": {"zh": "开始导入", "en": "Start the import"},
    "import.progress": {"zh": "导入进度", "en": "Progress"},
    "import.running": {"zh": "正在导入…", "en": "Importing…"},
    "import.done": {"zh": "导入完成", "en": "Import finished"},
    "import.failed": {"zh": "导入失败：{reason}", "en": "The import failed: {reason}"},
    "import.imported": {"zh": "新增", "en": "Imported"},
    "import.updated": {"zh": "更新", "en": "Updated"},
    "import.unchanged": {"zh": "无变化", "en": "Unchanged"},
    "import.skipped": {"zh": "跳过", "en": "Skipped"},
    "import.rejected": {"zh": "拒绝", "en": "Rejected"},
    "import.conflict_rows": {"zh": "其中冲突", "en": "Of these, conflicts"},
    "import.error_report": {
        "zh": "下载错误报告 (.xlsx)", "en": "Download the error report (.xlsx)"},
    "import.not_found": {"zh": "没有这个导入任务", "en": "No such import"},
    "import.already_started": {"zh": "该导入已开始", "en": "This import has already started"},
    "import.new": {"zh": "导入另一个文件", "en": "Import another file"},
    "import.column": {"zh": "「{header}」列 ({letter})", "en": "column {letter} “{header}”"},
    "import.reason_list_separator": {"zh": "；", "en": "; "},
    "import.column_reason": {"zh": "{column}：{reason}", "en": "{column}: {reason}"},
    # Why a row or a file was refused: apps/customer_reasons.py's keys, in both languages.
    **{f"import.reason.{key}": texts for key, texts in {
        "missing_name": {"zh": "缺少客户名称", "en": "missing name"},
        "too_long": {"zh": "超过 {limit} 个字符", "en": "longer than {limit} characters"},
        "bad_vip_level": {
            "zh": "“{value}”不是VIP等级：请填写 {names} 之一，或 0 到 {max} 的整数",
            "en": "“{value}” is no VIP level: give one of {names}, or a whole number "
                  "0 to {max}"},
        "unknown_manager": {"zh": "没有名为“{name}”的客户经理",
                            "en": "unknown account manager “{name}”"},
        "ambiguous_manager": {"zh": "有多位用户名叫“{name}”：请填写客户经理的用户名",
                              "en": "account manager “{name}” is ambiguous: give the "
                                    "username"},
        "bad_phone": {"zh": "“{number}”不是电话号码",
                      "en": "“{number}” is not a telephone number"},
        "phone_local": {"zh": "号码“{number}”是本地号码，需要加区号",
                        "en": "“{number}” is a local number: add its area code"},
        "phone_short_service": {"zh": "号码“{number}”是短号码（服务号），不是客户的号码",
                                "en": "“{number}” is a short service number, no customer's"},
        "phone_internal": {"zh": "号码“{number}”是分机号，不是客户的号码",
                           "en": "“{number}” is an extension, no customer's number"},
        "phone_unknown": {
            "zh": "号码“{number}”不是手机、固话、400/800 或国际号码",
            "en": "“{number}” is not a mobile, fixed-line, 400/800 or international number"},
        "no_phone_no_id": {
            "zh": "没有电话号码也没有外部编号：再次导入时将无法识别该客户",
            "en": "no phone number and no external id: the customer could not be "
                  "recognised when the sheet is imported again"},
        "external_id_repeated": {"zh": "外部编号“{external_id}”在第 {row} 行也出现了",
                                 "en": "external id “{external_id}” is also on row {row}"},
        "phone_repeated": {"zh": "号码 {number} 在第 {row} 行也出现了",
                           "en": "phone {number} is also on row {row}"},
        "same_customer": {"zh": "与第 {row} 行是同一位客户",
                          "en": "this is the same customer as row {row}"},
        "group_without_code": {
            "zh": "集团“{name}”不存在，且没有集团编号：请填写集团编号",
            "en": "group “{name}” does not exist and has no group code: add its code"},
        "phone_taken": {"zh": "号码 {number} 已属于其他客户（{name}）",
                        "en": "phone {number} belongs to another customer ({name}) already"},
        "phones_shared": {
            "zh": "这些号码（{numbers}）已分别属于 {n} 位不同的客户",
            "en": "the phone numbers ({numbers}) belong to {n} different customers already"},
        "phone_of_external_id": {
            "zh": "号码 {number} 属于外部编号为“{external_id}”的客户",
            "en": "phone {number} belongs to the customer with external id “{external_id}”"},
        "empty_file": {"zh": "文件是空的", "en": "the file is empty"},
        "old_xls": {"zh": "这是旧的 .xls 文件：请先在 Excel 中另存为 .xlsx",
                    "en": "this is an old .xls file: save it as .xlsx in Excel first"},
        "not_xlsx": {"zh": "这不是 .xlsx 电子表格文件", "en": "this is not an .xlsx spreadsheet"},
        "not_a_worksheet": {"zh": "工作簿的第一页不是工作表",
                            "en": "the first sheet of the workbook is not a worksheet"},
        "no_header_row": {"zh": "没有表头：第一个工作表是空的",
                          "en": "no header row: the first sheet is empty"},
        "no_name_column": {
            "zh": "没有客户名称列（表头如 客户名称、姓名 或 name）",
            "en": "no column for the customer name (a header such as 客户名称, 姓名 or name)"},
        "unknown_field": {"zh": "“{header}”列的导入字段“{field}”不存在",
                          "en": "unknown field “{field}” for column “{header}”"},
        "damaged": {"zh": "文件在第 {row} 行之后已损坏",
                    "en": "the sheet is damaged after row {row}"},
        "no_consecutive_ids": {"zh": "数据库没有为新行分配连续的编号，请重试",
                               "en": "the database gave the new rows no consecutive ids; "
                                     "try again"},
        "internal_error": {"zh": "内部错误（{name}），请联系系统管理员",
                           "en": "internal error ({name}); tell the administrator"},
    }.items()},
    **{f"import.field.{name}": texts for name, texts in {
        "name": {"zh": "客户名称", "en": "Name"},
        "phone": {"zh": "电话", "en": "Phone"},
        "external_id": {"zh": "外部编号", "en": "External id"},
        "group_code": {"zh": "集团编号", "en": "Group code"},
        "group_name": {"zh": "集团名称", "en": "Group name"},
        "vip_level": {"zh": "VIP等级", "en": "VIP level"},
        "account_manager": {"zh": "客户经理", "en": "Account manager"},
        "title": {"zh": "职务", "en": "Title"},
        "custom": {"zh": "自定义字段", "en": "Custom field"},
        "ignore": {"zh": "不导入", "en": "Ignore"},
    }.items()},
}


def register_messages() -> None:
    add_messages("customer", CUSTOMER_MESSAGES)


def say_reason(lang: str, why: Reason) -> str:
    """An import reason (apps/customer_reasons.py) in ``lang``."""
    return translate(lang, f"import.reason.{why.key}", **why.params)


def column_label(lang: str, letter: str, header: str | None) -> str:
    """A sheet column as the reader finds it: by its header, with its letter."""
    return translate(lang, "import.column", letter=letter, header=header or letter)
