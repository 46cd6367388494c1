"""UI strings of the queue pages and API (队列管理), in Chinese and English, including
each ``apps.queues.QueueError`` code's message."""

from __future__ import annotations

from web.i18n import add_messages

QUEUE_MESSAGES: dict[str, dict[str, str]] = {
    "nav.admin_queues": {"zh": "队列管理", "en": "Queues"},
    "queues.title": {"zh": "队列管理", "en": "Queues"},
    "queues.name": {"zh": "队列标识", "en": "Queue name"},
    "queues.name_hint": {
        "zh": "小写字母、数字、- 或 _，用于 API 和路由，创建后不可更改",
        "en": "Lowercase letters, digits, - or _; used by the API and routes; "
              "cannot change later"},
    "queues.display_name": {"zh": "显示名称", "en": "Display name"},
    "queues.strategy": {"zh": "分配策略", "en": "Strategy"},
    "queues.ring_timeout_s": {"zh": "座席振铃超时（秒）", "en": "Ring timeout per agent (s)"},
    "queues.wrap_up_s": {"zh": "话后处理时长（秒）", "en": "Wrap-up (s)"},
    "queues.max_wait_s": {"zh": "最长等待（秒）", "en": "Max wait (s)"},
    "queues.max_wait_hint": {"zh": "留空表示不限", "en": "Empty: no limit"},
    "queues.overflow_target": {"zh": "溢出目标", "en": "Overflow target"},
    "queues.members": {"zh": "成员座席", "en": "Members"},
    "queues.member_count": {"zh": "成员数", "en": "Members"},
    "queues.penalty": {"zh": "优先级（数字越小越先振铃）", "en": "Penalty (lower rings first)"},
    "queues.new": {"zh": "新建队列", "en": "New queue"},
    "queues.empty": {"zh": "暂无队列", "en": "No queues"},
    "queues.no_users": {"zh": "暂无可选用户", "en": "No users to choose"},
    "queues.deleted": {"zh": "队列已删除", "en": "Queue deleted"},
    "queues.not_found": {"zh": "队列不存在", "en": "No such queue"},
    "queues.delete_confirm": {
        "zh": "删除队列将同时删除其成员设置", "en": "Deleting the queue also drops its members"},
    "queues.strategy.longest_idle": {"zh": "最长空闲", "en": "Longest idle"},
    "queues.strategy.round_robin": {"zh": "轮询", "en": "Round robin"},
    "queues.strategy.fewest_calls": {"zh": "最少通话数", "en": "Fewest calls"},
    "queues.strategy.least_talk_time": {"zh": "最少通话时长", "en": "Least talk time"},
    "queues.strategy.ring_all": {"zh": "全部振铃", "en": "Ring all"},
    "queues.strategy.linear": {"zh": "顺序振铃", "en": "Linear (top-down)"},
    "queues.strategy.random": {"zh": "随机", "en": "Random"},
    "queues.error.bad_name": {
        "zh": "队列标识须为 1 到 64 个小写字母、数字、- 或 _，并以字母或数字开头",
        "en": "Queue name must be 1 to 64 lowercase letters, digits, '-' or '_', "
              "starting with a letter or digit"},
    "queues.error.display_name_required": {
        "zh": "请填写显示名称", "en": "Display name is required"},
    "queues.error.display_name_too_long": {
        "zh": "显示名称不能超过 100 个字符", "en": "Display name must be at most 100 characters"},
    "queues.error.overflow_too_long": {
        "zh": "溢出目标不能超过 255 个字符",
        "en": "Overflow target must be at most 255 characters"},
    "queues.error.unknown_strategy": {
        "zh": "未知的分配策略“{strategy}”（可选：{choices}）",
        "en": "Unknown strategy '{strategy}' (choose from {choices})"},
    "queues.error.out_of_range": {
        "zh": "“{field}”必须是 {low} 到 {high} 之间的整数",
        "en": "'{field}' must be an integer from {low} to {high}"},
    "queues.error.duplicate": {"zh": "队列“{name}”已存在", "en": "Queue '{name}' already exists"},
    "queues.error.not_found": {"zh": "队列“{name}”不存在", "en": "No such queue '{name}'"},
    "queues.error.unknown_user": {
        "zh": "用户“{username}”不存在", "en": "No such user '{username}'"},
    "queues.error.disabled_user": {
        "zh": "用户“{username}”已停用，不能加入队列",
        "en": "User '{username}' is disabled and cannot be a queue member"},
    "queues.error.bad_members": {
        "zh": "“members”必须是用户名列表",
        "en": "'members' must be a list of usernames"},
    "queues.error.duplicate_member": {
        "zh": "用户“{username}”在成员中重复出现",
        "en": "User '{username}' is listed twice in 'members'"},
    "queues.error.name_fixed": {
        "zh": "队列标识创建后不可更改", "en": "A queue's name cannot change"},
    "queues.error.bad_text": {
        "zh": "“{field}”必须是文本", "en": "'{field}' must be a string"},
}

add_messages("queues", QUEUE_MESSAGES)
