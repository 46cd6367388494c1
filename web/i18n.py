"""Every UI string, in Chinese (the default) and English.

Templates and routes name strings by key; a key missing from the catalogue is a bug and
raises KeyError (tests render every page in both languages). Role names come from
apps.Role's Chinese labels so the two never drift apart.
"""

from __future__ import annotations

from apps import Role
from web.errors import WebError

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANGUAGE_COOKIE = "lang"
# The html lang attribute for each language.
HTML_LANG = {"zh": "zh-CN", "en": "en"}
# Each language's name written in itself, for the switch in the header.
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}

_ROLE_EN: dict[Role, str] = {
    Role.admin: "Administrator",
    Role.service_manager: "Group service and marketing manager",
    Role.shift_leader: "Shift leader",
    Role.supervisor: "Supervisor",
    Role.agent: "Agent",
    Role.account_manager: "Account manager",
}

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh": "呼叫中心", "en": "Call center"},
    "login.title": {"zh": "登录", "en": "Log in"},
    "login.username": {"zh": "用户名", "en": "Username"},
    "login.password": {"zh": "密码", "en": "Password"},
    "login.submit": {"zh": "登录", "en": "Log in"},
    "login.failed": {"zh": "用户名或密码错误", "en": "Wrong username or password"},
    "login.throttled": {
        "zh": "登录失败次数过多，请 {seconds} 秒后再试",
        "en": "Too many failed logins; try again in {seconds} seconds",
    },
    "error.csrf": {
        "zh": "页面已过期，请刷新后重试",
        "en": "The page has expired; reload it and try again",
    },
    "error.unauthenticated": {"zh": "请先登录", "en": "Please log in"},
    "error.forbidden": {"zh": "您没有权限执行此操作", "en": "You are not allowed to do this"},
    "error.bad_request": {"zh": "请求格式错误", "en": "Malformed request"},
    "error.not_found": {
        "zh": "您要找的页面不存在，请检查地址是否正确",
        "en": "There is no such page; check the address",
    },
    "error.internal": {
        "zh": "服务器出错了，请稍后再试；如果问题一直存在，请联系系统管理员",
        "en": "Something went wrong on the server; try again later, and tell the "
              "administrator if it goes on",
    },
    "error.title": {"zh": "出错了", "en": "Something went wrong"},
    "error.title_403": {"zh": "没有权限", "en": "Not allowed"},
    "error.title_404": {"zh": "页面不存在", "en": "Page not found"},
    "error.title_500": {"zh": "服务器错误", "en": "Server error"},
    "error.home": {"zh": "返回首页", "en": "Back to the start page"},
    "error.back": {"zh": "返回上一页", "en": "Go back"},
    "toast.close": {"zh": "关闭", "en": "Close"},
    "empty.nothing": {"zh": "暂无数据", "en": "Nothing here yet"},
    "pagination.label": {"zh": "分页", "en": "Pages"},
    "pagination.previous": {"zh": "上一页", "en": "Previous"},
    "pagination.next": {"zh": "下一页", "en": "Next"},
    "pagination.page": {"zh": "第 {page} 页，共 {pages} 页", "en": "Page {page} of {pages}"},
    # What an agent is doing, as the desktop, the wallboard and the reports show it.
    "agent_state.idle": {"zh": "空闲", "en": "Available"},
    "agent_state.ringing": {"zh": "振铃", "en": "Ringing"},
    "agent_state.talking": {"zh": "通话", "en": "On a call"},
    "agent_state.busy": {"zh": "示忙", "en": "Busy"},
    "agent_state.wrap_up": {"zh": "话后", "en": "Wrap-up"},
    "agent_state.offline": {"zh": "离线", "en": "Logged out"},
    "header.user": {"zh": "当前用户", "en": "Signed in as"},
    "header.logout": {"zh": "退出", "en": "Log out"},
    "header.logout_everywhere": {"zh": "退出所有设备", "en": "Log out everywhere"},
    "header.logout_everywhere_hint": {
        "zh": "结束您在所有浏览器和设备上的登录，包括本页",
        "en": "End your login in every browser and on every device, this one included",
    },
    "logout.done": {"zh": "您已退出登录", "en": "You have logged out"},
    "logout.everywhere_done": {
        "zh": "已在所有设备上退出登录（结束 {sessions} 个会话）",
        "en": "Logged out everywhere; sessions ended: {sessions}",
    },
    "header.language": {"zh": "语言", "en": "Language"},
    "header.menu": {"zh": "菜单", "en": "Menu"},
    "nav.label": {"zh": "导航", "en": "Navigation"},
    "nav.desktop": {"zh": "座席工作台", "en": "Agent desktop"},
    "home.nothing": {
        "zh": "您的账号暂无可用页面，请联系系统管理员",
        "en": "Your account has no pages yet; ask the administrator",
    },
    "desktop.screen_pop": {"zh": "来电弹屏", "en": "Screen pop"},
    "desktop.screen_pop_empty": {"zh": "暂无来电", "en": "No incoming call"},
    "desktop.contact_notes": {"zh": "沟通记录", "en": "Contact notes"},
    "desktop.contact_notes_empty": {"zh": "暂无沟通记录", "en": "No contact notes"},
    "desktop.calls": {"zh": "通话", "en": "Calls"},
    "desktop.calls_empty": {"zh": "暂无通话", "en": "No calls"},
    "desktop.live": {"zh": "实时连接", "en": "Live connection"},
    "desktop.connected": {"zh": "已连接", "en": "Connected"},
    "desktop.disconnected": {"zh": "未连接", "en": "Disconnected"},
    **{f"role.{role.value}": {"zh": role.label, "en": _ROLE_EN[role]} for role in Role},
}


def choose_language(query: str | None, cookie: str | None) -> str:
    """``?lang=`` wins over the ``lang`` cookie; anything unknown means the default."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            assert candidate is not None
            return candidate
    return DEFAULT_LANGUAGE


def add_messages(area: str, messages: dict[str, dict[str, str]]) -> None:
    """Join an area's strings (admin pages, customers...) to the one catalogue templates
    and the navigation read. A key the catalogue has with another text would silently
    change that text elsewhere, so it is refused."""
    clash = sorted(key for key in set(messages) & set(MESSAGES)
                   if MESSAGES[key] != messages[key])
    if clash:
        raise WebError(f"{area} UI strings clash with others: {', '.join(clash)}")
    MESSAGES.update(messages)


def translate(lang: str, key: str, **params: object) -> str:
    text = MESSAGES[key][lang]
    return text.format(**params) if params else text


def role_label(lang: str, role: str) -> str:
    return translate(lang, f"role.{role}")
