"""Messages people read, in Chinese (zh-CN, the default) and English, keyed by stable error code."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # code: (zh-CN, en)
    "UNAUTHENTICATED": ("缺少应用密钥：请在 Authorization 头中以 Bearer 方式提供。",
                        "No application key: send it as 'Authorization: Bearer <key>'."),
    "KEY_INVALID": ("应用密钥无效。", "The application key is not valid."),
    "KEY_REVOKED": ("应用密钥已被吊销。", "The application key has been revoked."),
    "BAD_REQUEST": ("请求无法解析：{detail}", "The request cannot be read: {detail}"),
    "BODY_TOO_LARGE": ("请求体超过 {limit} 字节上限。", "The request body exceeds the limit of {limit} bytes."),
    "RATE_LIMITED": ("请求过于频繁（上限 {limit}），请 {seconds} 秒后再试。",
                     "Too many requests (limit {limit}); try again in {seconds} s."),
    "BATCH_NOT_SUPPORTED": ("每个请求只能包含一个 GraphQL 操作。", "Send one GraphQL operation per request."),
    "METHOD_NOT_ALLOWED": ("查询请使用 POST 方法。", "Send queries with POST."),
    "PURPOSE_REQUIRED": ("查询数据须在 X-Purpose 头中声明用途（履职事项编码）。",
                         "Reading data requires a declared purpose (business-matter code) in the X-Purpose header."),
    "PURPOSE_NOT_REGISTERED": ("用途 {purpose} 未登记为本部门（{department}）的履职事项。",
                               "Purpose {purpose} is not a business matter registered for department {department}."),
    "NOT_SHARED": ("{resource}.{item} 属于不予共享类信息。", "{resource}.{item} is not shared (不予共享)."),
    "NO_GRANT": ("{resource}.{item} 属于有条件共享类，本部门没有有效的共享授权。",
                 "{resource}.{item} is shared on condition and your department has no grant for it."),
    "PURPOSE_NOT_APPROVED": ("共享授权 {grant} 未批准用途 {purpose} 使用 {resource}.{item}。",
                             "Grant {grant} does not approve purpose {purpose} for {resource}.{item}."),
    "GRANT_EXPIRED": ("共享授权 {grant} 已于 {until} 到期。", "Grant {grant} expired at {until}."),
    "GRANT_NOT_YET_VALID": ("共享授权 {grant} 自 {since} 起生效。", "Grant {grant} takes effect at {since}."),
    "APPLICATION_PENDING": ("共享申请 {grant} 正等待提供部门答复，答复期限 {since}；逾期未答复视为同意。",
                            "Application {grant} awaits the provider's answer, due {since}; no answer by then approves it."),
    "GRANT_REVOKED": ("共享授权 {grant} 已被撤销。", "Grant {grant} has been revoked."),
    "NOT_RELATED_DEPARTMENT": ("{resource} 仅在相关部门之间共享，本部门不在其列。",
                               "{resource} is shared only among its related departments, and yours is not one of them."),
    "DEPARTMENT_RESTRICTED": ("本部门使用 {resource} 的权益已被限制：{detail}",
                              "Your department's use of {resource} is restricted: {detail}"),
    "ITEM_UNKNOWN": ("{resource} 没有信息项 {item}。", "{resource} has no data item {item}."),
    "FILTER_NOT_ALLOWED": ("不能按无权读取的信息项 {item} 筛选或查找：{reason}",
                           "You cannot filter or look up by {item}, which you may not read: {reason}"),
    "MASKED": ("{item} 须脱敏，只能按等于或属于筛选。", "{item} is masked for you: filter it only by eq or in."),
    "OUT_OF_SCOPE": ("查询条件超出共享授权的行范围：{detail}", "The query goes beyond the grant's row scope: {detail}"),
    "NOT_FOUND_IN_SCOPE": ("在共享授权的行范围内没有找到该记录。", "No such record within your grant's row scope."),
    "PAGE_SIZE_INVALID": ("每页条数须在 1 到 {limit} 之间，请求了 {requested} 条。",
                          "A page holds 1 to {limit} rows; {requested} were asked for."),
    "PAGE_SIZE_TOO_LARGE": ("每页最多 {limit} 条，请求了 {requested} 条。",
                            "At most {limit} rows a page; {requested} were asked for."),
    "LINK_TOO_LARGE": ("关联查询结果超过 {limit} 条，请缩小上层查询范围。",
                       "The link returns more than {limit} rows; narrow the query above it."),
    "COST_TOO_HIGH": ("本次查询的结果超过 {limit} 个数据项（行数 × 信息项数），请缩小查询。",
                      "The query answers more than {limit} values (rows x items); narrow it."),
    "BAD_CURSOR": ("分页游标无效。", "The page cursor is not valid."),
    "SOURCE_UNAVAILABLE": ("提供部门的数据源暂不可用：{resource}。", "The provider's source is unavailable: {resource}."),
    "AUDIT_UNAVAILABLE": ("访问记录无法写入，本次查询不返回数据。",
                          "The access record could not be written, so no data is returned."),
    "INTERNAL_ERROR": ("服务内部错误，已记录。", "Internal error; it has been logged."),
    # Catalog validation
    "CATALOG_INVALID": ("目录有 {count} 处错误，已整体拒绝，现行目录保持不变。",
                        "The catalog has {count} problem(s) and was refused as a whole; the catalog in force is unchanged."),
    "FILE_UNREADABLE": ("无法读取文件：{detail}", "cannot read the file: {detail}"),
    "TOML_SYNTAX": ("TOML 语法错误：{detail}", "TOML syntax error: {detail}"),
    "FIELD_REQUIRED": ("缺少必填字段。{detail}", "a required field is missing. {detail}"),
    "FIELD_INVALID": ("取值无效：{detail}", "invalid value: {detail}"),
    "FIELD_UNKNOWN": ("未知字段：{detail}", "unknown field: {detail}"),
    "DUPLICATE": ("重复定义：{detail}", "defined twice: {detail}"),
    "UNKNOWN_REFERENCE": ("引用了不存在的对象：{detail}", "refers to something that does not exist: {detail}"),
    "CATALOG_EMPTY": ("没有找到目录文件。{detail}", "no catalog files found. {detail}"),
    "SOURCE_MISMATCH": ("数据源与目录不符：{detail}", "the source does not match the catalog: {detail}"),
    # Administration
    "DEPARTMENT_NOT_FOUND": ("部门 {department} 不存在。", "Department {department} does not exist."),
    "RESOURCE_NOT_FOUND": ("资源 {resource} 不存在或未发布。", "Resource {resource} does not exist or is not published."),
    "ITEM_NOT_FOUND": ("资源 {resource} 没有信息项 {item}。", "Resource {resource} has no data item {item}."),
    "PURPOSE_NOT_FOUND": ("部门 {department} 没有登记用途 {purpose}。",
                          "Department {department} has no registered purpose {purpose}."),
    "KEY_NOT_FOUND": ("应用密钥 {key} 不存在。", "Application key {key} does not exist."),
    "GRANT_NOT_FOUND": ("共享授权 {grant} 不存在。", "Grant {grant} does not exist."),
    "RESTRICTION_NOT_FOUND": ("限制规则 {restriction} 不存在。", "Restriction {restriction} does not exist."),
    "APPLICATION_INVALID": ("共享申请有 {count} 处问题，未受理。", "The application has {count} problem(s) and was not accepted."),
    "APPLICATION_NOT_FOUND": ("共享申请 {application} 不存在。", "Application {application} does not exist."),
    "APPLICATION_ANSWERED": ("共享申请 {application} 已答复（{status}）。", "Application {application} is already answered ({status})."),
    "APPLICATION_DEEMED_APPROVED": ("共享申请 {application} 已逾期未答复，视为同意（第十九条）。",
                                    "Application {application} was not answered by its deadline and is approved by silence (Art 19)."),
    "NOT_YOUR_RESOURCE": ("只有提供部门可以审核共享申请 {application}。",
                          "Only the providing department reviews application {application}."),
    "NOTHING_TO_APPLY": ("{resource} 属于无条件共享类，无需申请，声明用途即可直接查询。",
                         "{resource} is shared unconditionally: there is nothing to apply for; query it under a declared purpose."),
    "FIELD_REQUIRED_USERS": ("须写明使用对象。", "Name the users (使用对象)."),
    "SHARE_MODE_INVALID": ("共享方式 {mode} 无效，可选：{modes}。", "Share mode {mode} is not one of: {modes}."),
    "END_IN_PAST": ("截止时间已过。", "The end date is in the past."),
    "END_TOO_FAR": ("截止时间超过 {days} 天的上限。", "The end date is more than {days} days away."),
    "ACKNOWLEDGEMENT_REQUIRED": ("须承诺仅按申请用途使用、不向第三方提供（第二十二条）。",
                                 "Acknowledge purpose-only use and no onward transfer (Art 22)."),
    "NARROWING_INVALID": ("审核只能缩小申请的范围：{detail}", "An approval can only narrow the application: {detail}"),
    "ROLE_UNKNOWN": ("角色 {role} 无效，可选：{roles}。", "Role {role} is not one of: {roles}."),
    "FORBIDDEN": ("本应用密钥没有“{role}”角色。", "This key lacks the {role} role."),
    "NOT_YOUR_APPLICATION": ("只有申请部门可以就共享申请 {application} 提请协调。",
                             "Only the applying department can send application {application} to coordination."),
    "COORDINATION_NOT_ALLOWED": ("只有被拒绝的申请或不予共享类资源的申请可以提请协调。",
                                 "Only a refused application, or one for a not-shared resource, can go to coordination."),
    "KEY_ALREADY_REVOKED": ("应用密钥 {key} 已经吊销。", "Application key {key} is already revoked."),
    "GRANT_ALREADY_REVOKED": ("共享授权 {grant} 已经撤销。", "Grant {grant} is already revoked."),
    "RESTRICTION_ALREADY_LIFTED": ("限制规则 {restriction} 已经解除。", "Restriction {restriction} is already lifted."),
    "GRANT_FOR_PROVIDER": ("{department} 是 {resource} 的提供部门，始终可以读取，无需授权。",
                           "{department} provides {resource} and always reads it; it needs no grant."),
    "GRANT_NO_ITEMS": ("共享授权须列出至少一个信息项。", "A grant names at least one data item."),
    "GRANT_NO_PURPOSES": ("共享授权须列出至少一个用途。", "A grant names at least one purpose."),
    "GRANT_BAD_MASK": ("信息项 {item} 的脱敏方式 {mask} 无效，可选：{kinds}。", "Mask {mask} for {item} is not one of: {kinds}."),
    "GRANT_MASK_NOT_TEXT": ("只能对文本类信息项脱敏，{item} 不是文本。", "Only text items can be masked; {item} is not text."),
    "GRANT_MASK_NOT_COVERED": ("脱敏的信息项 {item} 不在授权范围内。", "The masked item {item} is not covered by the grant."),
    "GRANT_EMPTY_SCOPE": ("信息项 {item} 的行范围至少要有一个值。", "The row scope on {item} needs at least one value."),
    "GRANT_BAD_PERIOD": ("截止时间须晚于生效时间。", "The end must be after the start."),
    "GRANT_NOT_SHARED_ITEMS": ("{items} 属于不予共享类：只有引用法律依据的依法共享授权（--legal-basis）才能开放。",
                               "{items} not shared (不予共享): only a legal-basis grant citing the law (--legal-basis) can open them."),
    "REASON_REQUIRED": ("须填写理由。", "A reason is required."),
    "CATALOG_NOT_LOADED": ("尚未加载资源目录，请先运行 govshare catalog load 或 govshare demo。",
                           "No catalog is loaded yet: run 'govshare catalog load' or 'govshare demo' first."),
    # The govshare command's own lines
    "CLI_DEMO_BUILT": ("演示世界已生成：{var}/（{count} 个部门的应用密钥见 {keys}）",
                       "Demo world built in {var}/ (application keys of {count} departments in {keys})"),
    "CLI_DEMO_EXISTS": ("演示世界已存在，未改动：{var}/（应用密钥见 {keys}；重建请加 --force）",
                        "The demo world already exists in {var}/ and was left as it is (keys in {keys}; --force rebuilds it)"),
    "CLI_CATALOG_LOADED": ("目录第 {version} 版已生效：{departments} 个部门，{resources} 个已发布资源。",
                           "Catalog version {version} is in force: {departments} departments, {resources} published resources."),
    "CLI_CATALOG_OK": ("目录有效，{resources} 个已发布资源的数据源均与目录一致。",
                       "The catalog is valid and the sources of all {resources} published resources match it."),
    "CLI_CATALOG_MISMATCHES": ("{count} 处与数据源不符。", "{count} mismatch(es) with the sources."),
    "CLI_KEY_CREATED": ("密钥编号 {key_id}（{department} / {application}）。请立即保存，此后无法再次查看：",
                        "Key {key_id} ({department} / {application}). Save it now; it cannot be shown again:"),
    "CLI_KEY_REVOKED": ("密钥 {key_id} 已吊销。", "Key {key_id} has been revoked."),
    "CLI_KEY_STATE_ACTIVE": ("有效", "active"),
    "CLI_KEY_STATE_REVOKED": ("吊销于 {at}", "revoked at {at}"),
    "CLI_GRANT_REVOKED": ("授权 {grant} 已撤销。", "Grant {grant} has been revoked."),
    "CLI_GRANT_STATE_REVOKED": ("已撤销", "revoked"),
    "CLI_GRANT_STATE_RANGE": ("{since} 至 {until}", "{since} to {until}"),
    "CLI_RESTRICTION_LIFTED": ("限制 {restriction} 已解除。", "Restriction {restriction} has been lifted."),
    "CLI_CALENDAR_LOADED": ("{year} 年节假日安排已加载：{holidays} 个放假日，{workdays} 个调休上班日。",
                            "The {year} schedule is loaded: {holidays} holidays, {workdays} make-up working days."),
    "CLI_CALENDAR_ROW": ("{year}  放假 {holidays} 天  调休上班 {workdays} 天  {source}",
                         "{year}  {holidays} holidays  {workdays} make-up days  {source}"),
    "CLI_CHAIN_OK": ("{chain} 记录链完整：{count} 条。", "The {chain} chain is intact: {count} records."),
    "CLI_CHAIN_BROKEN": ("{chain} 记录链在第 {seq} 条处断开：{problem}。", "The {chain} chain breaks at record {seq}: {problem}."),
    "CLI_CHAIN_BROKEN_COUNT": ("{count} 条记录链未通过核验。", "{count} chain(s) failed verification."),
    "CLI_BAD_DATE": ("{value!r} 不是 YYYY-MM-DD 日期", "{value!r} is not a YYYY-MM-DD date"),
    "CLI_BAD_PAIR": ("{option} 应写作 信息项=值，而不是 {value!r}", "{option} takes item=value, not {value!r}"),
}


def normalize_language(accept_language: str | None, default: str = "zh-CN") -> str:
    """Pick zh-CN or en from an Accept-Language header (first supported tag wins)."""
    if not accept_language:
        return default
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return default


def message(code: str, lang: str = "zh-CN", **params: object) -> str:
    zh, en = MESSAGES.get(code, (code, code))
    template = en if lang == "en" else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
