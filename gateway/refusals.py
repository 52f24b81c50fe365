"""Every error the gateway itself answers with: the one catalogue of its IDs and messages.

Findings about a record's data come from the contract's rule book (`contracts/data/rules.toml`)
and the DIP stages' reasons from `workers.dip`; this catalogue holds the rest: refused
requests (authentication, roles, limits, formats, dependencies) and the checks the gateway
makes before the contract sees a record (decoding, routing fields, batch size). The IDs are on
the wire (`errors[].rule`, the `X-Dipgw-Reason` header) and in integrators' code: never rename
one. `docs/upload-format.md` shows this table as `markdown_table()` renders it (a test keeps
them equal). Template values are never personal data.
"""

from __future__ import annotations

from typing import Final

import msgspec

from contracts import Reason


class Refusal(Reason, frozen=True, kw_only=True):
    """A catalogue entry with the HTTP status it is answered with (422: among a list's
    findings, with the status of the whole answer)."""

    status: int = 422
    severity: str = "reject"


_DATA = "规范性"  # the gateway's own checks of a record are standardisation findings

AUTH_MISSING: Final = Refusal(
    rule="AUTH_MISSING",
    status=401,
    field="$",
    message="缺少身份认证信息",
    message_en="no credentials: sign the request or send a token",
)
AUTH_HEADER_MISSING: Final = Refusal(
    rule="AUTH_HEADER_MISSING",
    status=401,
    field="$",
    message="签名请求缺少报文头：{names}（须带 X-Dipgw-Hospital、X-Dipgw-Timestamp、"
    "X-Dipgw-Nonce、X-Dipgw-Signature）",
    message_en="a signed request carries X-Dipgw-Hospital, X-Dipgw-Timestamp, X-Dipgw-Nonce "
    "and X-Dipgw-Signature; missing or empty: {names}",
)
AUTH_TIMESTAMP: Final = Refusal(
    rule="AUTH_TIMESTAMP",
    status=401,
    field="X-Dipgw-Timestamp",
    message="时间戳 {given}（{given_time}）与服务端时间 {server_time}（Unix {server_unix}）相差 "
    "{skew} 秒，超出 ±{window} 秒：请用 NTP 校准 HIS 时钟，并在发送时签名",
    message_en="timestamp {given} ({given_time}) is {skew} s from the server's time "
    "{server_time} (Unix {server_unix}), outside ±{window} s: set the HIS clock by NTP and "
    "sign each request when it is sent",
)
AUTH_TIMESTAMP_FORMAT: Final = Refusal(
    rule="AUTH_TIMESTAMP_FORMAT",
    status=401,
    field="X-Dipgw-Timestamp",
    message="时间戳须为 Unix 秒数（1–12 位 ASCII 数字；服务端时间 {server_unix}，{server_time}）",
    message_en="timestamp must be Unix seconds in 1–12 ASCII digits (the server's time is "
    "{server_unix}, {server_time})",
)
AUTH_NONCE: Final = Refusal(
    rule="AUTH_NONCE",
    status=401,
    field="X-Dipgw-Nonce",
    message="随机串格式错误（须为 16–64 位字母、数字、_ 或 -；收到 {length} 位）",
    message_en="nonce must be 16–64 of [A-Za-z0-9_-] (the one sent has {length} characters)",
)
AUTH_SIGNATURE: Final = Refusal(
    rule="AUTH_SIGNATURE",
    status=401,
    field="X-Dipgw-Signature",
    message="签名校验失败：机构编码未登记或密钥不符，或所签字符串与服务端不同。服务端待签字符串为 "
    "{shape}（路径 {path}），其 SHA-256 为 {canonical_sha256}（末行报文体摘要 {body_sha256}）；"
    "HMAC-SM3 机构（报文体摘要用 SM3）为 {canonical_sha256_sm3}（末行 {body_sm3}）",
    message_en="signature does not verify: unknown hospital or wrong key, or the string signed "
    "differs from the server's. The server's string is {shape} (path {path}); its SHA-256 is "
    "{canonical_sha256} (last line, the body digest: {body_sha256}); for HMAC-SM3 (SM3 body "
    "digest) {canonical_sha256_sm3} (last line {body_sm3})",
)
AUTH_NONCE_REUSED: Final = Refusal(
    rule="AUTH_NONCE_REUSED",
    status=401,
    field="X-Dipgw-Nonce",
    message="随机串已使用（重放）；重试时请用新的随机串和时间戳重新签名",
    message_en=(
        "nonce already used (replay); sign every retry anew with a fresh nonce and timestamp"
    ),
)
AUTH_CERT: Final = Refusal(
    rule="AUTH_CERT",
    status=401,
    field="$",
    message="客户端证书未登记",
    message_en="client certificate not registered",
)
AUTH_TOKEN: Final = Refusal(
    rule="AUTH_TOKEN",
    status=401,
    field="Authorization",
    message="令牌无效或已吊销",
    message_en="token invalid or revoked",
)
AUTH_TOKEN_EXPIRED: Final = Refusal(
    rule="AUTH_TOKEN_EXPIRED",
    status=401,
    field="Authorization",
    message="令牌已过期，请向省平台申请新令牌",
    message_en="token expired: ask the province's operators for a new one",
)
AUTH_DISABLED: Final = Refusal(
    rule="AUTH_DISABLED",
    status=403,
    field="$",
    message="该机构已停用",
    message_en="this institution is disabled",
)
FORBIDDEN_ROLE: Final = Refusal(
    rule="FORBIDDEN_ROLE",
    status=403,
    field="$",
    message="仅{allowed}可{action}",
    message_en="only {allowed_en} may {action_en}",
)
FORBIDDEN_CSRF: Final = Refusal(
    rule="FORBIDDEN_CSRF",
    status=403,
    field="$",
    message="请从登录页面提交（跨站请求被拒绝）",
    message_en="submit the form from the login page (a cross-site request is refused)",
)
FORBIDDEN_REGION: Final = Refusal(
    rule="FORBIDDEN_REGION",
    status=403,
    field="$",
    message="无权查看其他地市",
    message_en="not your city",
)
FORBIDDEN_CITY: Final = Refusal(
    rule="FORBIDDEN_CITY",
    status=403,
    field="city",
    message="无权查看 {city} 的病例",
    message_en="this token may not read city {city}",
)
FORBIDDEN_INSTITUTION: Final = Refusal(
    rule="FORBIDDEN_INSTITUTION",
    status=403,
    field="fixmedins_code",
    message="只能上传本机构、本统筹区的结算清单：{positions}",
    message_en="a hospital may submit only its own lists in its own region: {positions}",
)
RATE_LIMITED: Final = Refusal(
    rule="RATE_LIMITED",
    status=429,
    field="$",
    message="超出{budget}配额，请在 Retry-After 秒后重试",
    message_en="over the budget of {budget_en}; retry after Retry-After seconds",
)
NOT_FOUND: Final = Refusal(
    rule="NOT_FOUND",
    status=404,
    field="$",
    message="{what_cn}不存在",
    message_en="no such {what}",
)
BAD_QUERY: Final = Refusal(
    rule="BAD_QUERY",
    status=400,
    field="$",
    message="{message}",
    message_en="{message_en}",
)
BAD_FORM: Final = Refusal(
    rule="BAD_FORM",
    status=400,
    field="$",
    message="表单无法解析",
    message_en="form cannot be parsed",
)
HTTP400: Final = Refusal(
    rule="HTTP400",
    status=400,
    field="$",
    message="无法解析的 HTTP 请求（请求行、报文头或长度有误，或不是 HTTP）",
    message_en="the request is not well-formed HTTP (request line, a header, or its length)",
)
HTTP431: Final = Refusal(
    rule="HTTP431",
    status=431,
    field="$",
    message="请求行或报文头过长（每行至多 {limit} 字节）",
    message_en="request line or a header longer than {limit} bytes",
)
HTTP404: Final = Refusal(
    rule="HTTP404", status=404, field="$", message="未找到", message_en="not found"
)
HTTP405: Final = Refusal(
    rule="HTTP405", status=405, field="$", message="方法不允许", message_en="method not allowed"
)
HTTP413: Final = Refusal(
    rule="HTTP413",
    status=413,
    field="$",
    message="请求体过大",
    message_en="request body too large",
)
HTTP415: Final = Refusal(
    rule="HTTP415",
    status=415,
    field="Content-Type",
    message="不支持的内容类型，请使用 {allowed}",
    message_en="unsupported content type: use {allowed}",
)
HTTP_OTHER: Final = Refusal(
    rule="HTTP{status}",
    status=400,
    field="$",
    message="{reason}",
    message_en="{reason}",
)
"""Any other protocol-level refusal aiohttp raises (a malformed request line, …): the ID is
`HTTP` and the status code, the message the status's reason phrase."""
SYS_TIMEOUT: Final = Refusal(
    rule="SYS_TIMEOUT",
    status=503,
    field="$",
    message="处理超时，请稍后重试",
    message_en="timed out; retry",
)
SYS_UNAVAILABLE: Final = Refusal(
    rule="SYS_UNAVAILABLE",
    status=503,
    field="$",
    message="暂时无法受理，请稍后重试",
    message_en="temporarily unavailable; retry",
)
SYS500: Final = Refusal(
    rule="SYS500", status=500, field="$", message="服务内部错误", message_en="internal error"
)

# --- the gateway's checks of a record before the contract's (status: that of the answer) ---

DEC_JSON: Final = Refusal(
    rule="DEC_JSON",
    dimension=_DATA,
    field="$",
    message="JSON 格式错误：{detail}",
    message_en="malformed JSON: {detail}",
)
DEC_SHAPE: Final = Refusal(
    rule="DEC_SHAPE",
    dimension=_DATA,
    field="records",
    message='批量报文须为 {{"records": [...]}} 或数组',
    message_en='a batch is {{"records": [...]}} or a JSON array',
)
DEC_FILE: Final = Refusal(
    rule="DEC_FILE",
    dimension=_DATA,
    field="$",
    message="文件无法读取：{detail}",
    message_en="unreadable {kind} file: {detail}",
)
FMT_UNSUPPORTED: Final = Refusal(
    rule="HTTP415",
    status=415,
    dimension=_DATA,
    field="$",
    message="不支持 {kind}",
    message_en="{kind} is not supported",
)
FMT004: Final = Refusal(
    rule="FMT004",
    dimension=_DATA,
    field="$",
    message="文本含有不可存储的字符（\\u0000 或孤立代理项）：{path}",
    message_en="text holds an unstorable character (NUL, lone surrogate): {path}",
)
ENV_INFNO: Final = Refusal(
    rule="ENV_INFNO",
    dimension=_DATA,
    field="infno",
    message="交易编号 {given} 与接口 {infno} 不符",
    message_en="infno {given} does not match the endpoint {infno}",
)
REQ_ROUTING: Final = Refusal(
    rule="REQ_ROUTING",
    dimension="完整性",
    field="$",
    message="【{name}】未填写",
    message_en="{path} is required to route the record",
)
BATCH_TOO_LARGE: Final = Refusal(
    rule="BATCH_TOO_LARGE",
    status=413,
    dimension=_DATA,
    field="records",
    message="单批记录数 {count} 超过上限 {limit}",
    message_en="{count} records exceed the batch limit of {limit}",
)
FILE_TOO_LARGE: Final = Refusal(
    rule="FILE_TOO_LARGE",
    status=413,
    dimension=_DATA,
    field="$",
    message="文件超出上限：{limit_cn}最多 {maximum}",
    message_en="the file passes a limit: {limit} at most {maximum}",
)
"""A spreadsheet package (XLSX) asks for more than its limits allow (`adapters.InputLimits`):
`decompressed bytes`, `shared strings bytes`, `zip members`, `compression ratio`, or the
`memory` and `parse seconds` a file worker may use."""
SHEET_LIMIT: Final = Refusal(
    rule="SHEET_LIMIT",
    status=413,
    dimension=_DATA,
    field="$",
    message="表格超出上限：{limit_cn}最多 {maximum}",
    message_en="the sheet passes a limit: {limit} at most {maximum}",
)
"""A sheet (CSV, XLSX) holds more than its limits allow: `rows`, `columns`, `cells`,
`string length`, `shared strings`, `XML elements`."""
JSON_TOO_DEEP: Final = Refusal(
    rule="JSON_TOO_DEEP",
    dimension=_DATA,
    field="$",
    message="JSON 嵌套过深，无法读取（超过 {maximum} 层）",
    message_en="JSON nested too deeply to read (more than {maximum} levels)",
)
BATCH_EMPTY: Final = Refusal(
    rule="BATCH_EMPTY",
    dimension=_DATA,
    field="records",
    message="批量报文没有记录",
    message_en="the batch is empty",
)

# --- feed sources (gateway.feeds): what only a source can see of an item ------------------

FEED_COLUMN_TYPE: Final = Refusal(
    rule="FEED_COLUMN_TYPE",
    dimension=_DATA,
    field="$",
    message="中间库字段类型无法读取为文本：{detail}",
    message_en="a column of the intermediate table cannot be read as text: {detail}",
)
FEED_COLUMN_MISSING: Final = Refusal(
    rule="FEED_COLUMN_MISSING",
    dimension=_DATA,
    field="$",
    message="中间库缺少映射的字段：{detail}",
    message_en="the intermediate table lacks a mapped column: {detail}",
)
FEED_ENCODING: Final = Refusal(
    rule="FEED_ENCODING",
    dimension=_DATA,
    field="$",
    message="文件编码无法识别（须为 UTF-8 或 GBK/GB18030）：{detail}",
    message_en="the file is neither UTF-8 nor GBK/GB18030: {detail}",
)
FEED_TOO_LARGE: Final = Refusal(
    rule="FEED_TOO_LARGE",
    dimension=_DATA,
    field="$",
    message="文件过大，未读取：{detail}",
    message_en="the file is too large and was not read: {detail}",
)
FEED_UNREADABLE: Final = Refusal(
    rule="FEED_UNREADABLE",
    dimension=_DATA,
    field="$",
    message="文件无法读取：{detail}",
    message_en="the file cannot be read: {detail}",
)
FEED_FORMAT: Final = Refusal(
    rule="FEED_FORMAT",
    dimension=_DATA,
    field="$",
    message="不支持的文件类型：{detail}",
    message_en="not a file type the feed reads: {detail}",
)
FEED_FOREIGN: Final = Refusal(
    rule="FEED_FOREIGN",
    dimension=_DATA,
    field="fixmedins_code",
    message="该数据源只能报送 {hospitals} 本机构、本统筹区的结算清单",
    message_en="this feed carries only the lists of {hospitals}, in their own regions",
)


# --- special review (特病单议, gateway.special_review): a request or decision refused ---------

REVIEW_BODY: Final = Refusal(
    rule="REVIEW_BODY",
    status=400,
    field="$",
    message="请求体应为 JSON 对象：{detail}",
    message_en="the body must be a JSON object: {detail}",
)
REVIEW_FIELD: Final = Refusal(
    rule="REVIEW_FIELD",
    field="$",
    message="字段 {name} 应为{shape}",
    message_en="{name} must be {shape_en}",
)
REVIEW_CASE_UNKNOWN: Final = Refusal(
    rule="REVIEW_CASE_UNKNOWN",
    status=404,
    field="setl_id",
    message="病例 {case} 不存在（未入库计分，或不在本地市）",
    message_en="no scored case {case} (never stored and scored, or not in your city)",
)
REVIEW_NOT_YOURS: Final = Refusal(
    rule="REVIEW_NOT_YOURS",
    status=403,
    field="fixmedins_code",
    message="医疗机构只能为本机构的病例申请特病单议（{given} 不是本机构 {own}）",
    message_en="a hospital may ask a special review of its own cases only ({given} is not {own})",
)
REVIEW_UNSCORED: Final = Refusal(
    rule="REVIEW_UNSCORED",
    field="setl_id",
    message="病例 {case} 未计分（{why}），无清算年度，不能申请特病单议",
    message_en="case {case} is not scored ({why}): it has no clearing year to be reviewed in",
)
REVIEW_DUPLICATE: Final = Refusal(
    rule="REVIEW_DUPLICATE",
    status=409,
    field="setl_id",
    message="病例 {case} 已有特病单议申请 {review_id}（{status}）",
    message_en="case {case} already has special review {review_id} ({status})",
)
REVIEW_UNKNOWN: Final = Refusal(
    rule="REVIEW_UNKNOWN",
    status=404,
    field="review_id",
    message="特病单议申请 {review_id} 不存在",
    message_en="no special review {review_id}",
)
REVIEW_DECIDED: Final = Refusal(
    rule="REVIEW_DECIDED",
    status=409,
    field="review_id",
    message="特病单议申请 {review_id} 已于 {decided_at} 由 {decided_by} 决定（{status}），不能再改",
    message_en="special review {review_id} was decided ({status}) by {decided_by} at "
    "{decided_at}; a decision is final",
)
REVIEW_POINTS: Final = Refusal(
    rule="REVIEW_POINTS",
    field="approved_points",
    message="核准分值应为大于 0、至多 4 位小数的数（收到 {given}）",
    message_en="approved points must be a number above 0 with at most 4 decimals (got {given})",
)
REVIEW_NO_POLICY: Final = Refusal(
    rule="REVIEW_NO_POLICY",
    field="special_review_quota_permille",
    message="{city} 地市 {year} 年没有结算政策"
    "（settlement_policies.special_review_quota_permille），无法核对特病单议名额："
    "请先导入该年的结算政策",
    message_en="city {city} has no settlement policy for {year} "
    "(settlement_policies.special_review_quota_permille): the special-review quota is unknown; "
    "import the year's settlement policy first",
)
REVIEW_QUOTA: Final = Refusal(
    rule="REVIEW_QUOTA",
    field="special_review_quota_permille",
    message="{city} 地市 {year} 年特病单议名额已满：上限 {quota} 例（{cases} 例的 {permille}‰），"
    "已核准 {approved} 例",
    message_en="city {city}'s special-review quota for {year} is used up: at most {quota} "
    "approved ({permille}‰ of {cases} cases), {approved} approved already",
)


CATALOGUE: Final[tuple[Refusal, ...]] = tuple(
    value for value in list(globals().values()) if isinstance(value, Refusal)
)
"""Every entry, in the order above (HTTP415 twice: the request's and a file kind's)."""


def for_http_status(status: int) -> Refusal:
    """The entry for a protocol-level refusal of aiohttp's (`HTTP405`, …; else `HTTP_OTHER`)."""
    for entry in CATALOGUE:
        if entry.rule == f"HTTP{status}" and entry.status == status:
            return entry
    return msgspec.structs.replace(HTTP_OTHER, rule=f"HTTP{status}", status=status)


def markdown_table() -> str:
    """The catalogue as the Markdown table in `docs/upload-format.md`."""
    lines = [
        "| ID | HTTP | field | message | 说明 |",
        "|---|---|---|---|---|",
    ]
    for entry in CATALOGUE:
        status = str(entry.status) if entry.status != 422 else "422 (with the list's findings)"
        lines.append(
            f"| `{entry.rule}` | {status} | `{entry.field}` | {_cell(entry.message_en)} "
            f"| {_cell(entry.message)} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}").replace("|", "\\|")
