"""Messages people read, in Chinese (zh-CN, the default) and English, keyed by stable error code."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # code: (zh-CN, en)
    "UNAUTHENTICATED": (
        "缺少应用密钥：请在 Authorization 头中以 Bearer 方式提供。",
        "No application key: send it as 'Authorization: Bearer <key>'.",
    ),
    "KEY_INVALID": ("应用密钥无效。", "The application key is not valid."),
    "KEY_REVOKED": ("应用密钥已被吊销。", "The application key has been revoked."),
    "BAD_REQUEST": ("请求无法解析：{detail}", "The request cannot be read: {detail}"),
    # What BAD_REQUEST's {detail} says of a GraphQL request (govshare/graphql_http.py), as Phrase parameters.
    "REQUEST_QUERY_MISSING": ("缺少字符串参数 query。", "expected a 'query' string."),
    "REQUEST_QUERY_EMPTY": ("参数 query 为空。", "'query' is empty."),
    "REQUEST_NOT_STRING": ("参数 {name} 须为字符串或 null。", "'{name}' must be a string or null."),
    "REQUEST_NOT_OBJECT": ("参数 {name} 须为 JSON 对象或 null。", "'{name}' must be an object or null."),
    "REQUEST_BODY_EMPTY": ("请求体为空。", "the body is empty."),
    "REQUEST_BODY_NOT_JSON": (
        "请求体不是有效的 JSON（第 {line} 行第 {column} 列）。",
        "the body is not valid JSON (line {line}, column {column}).",
    ),
    "REQUEST_BODY_UNREADABLE": (
        "请求体不是可读取的 JSON（编码不是 UTF-8，或嵌套过深）。",
        "the body is not readable JSON (not UTF-8, or nested too deeply).",
    ),
    "REQUEST_PARAM_UNREADABLE": (
        "参数 {name} 不是可读取的 JSON（嵌套过深）。",
        "'{name}' is not readable JSON (nested too deeply).",
    ),
    "REQUEST_NOT_JSON_OBJECT": (
        "请求体须为含字符串参数 query 的 JSON 对象。",
        "expected a JSON object with a 'query' string.",
    ),
    "REQUEST_PARAM_NOT_JSON": (
        "参数 {name} 不是有效的 JSON（第 {line} 行第 {column} 列）。",
        "'{name}' is not valid JSON (line {line}, column {column}).",
    ),
    "REQUEST_PARAM_REPEATED": ("参数 {name} 只能发送一次。", "'{name}' is sent more than once."),
    "REQUEST_PERSISTED_NO_HASH": (
        "extensions.persistedQuery 缺少 sha256Hash。",
        "'extensions.persistedQuery' needs a 'sha256Hash'.",
    ),
    "REQUEST_DOCUMENT_ID_NOT_STRING": ("文档编号须为字符串。", "a document id must be a string."),
    "REQUEST_TWO_DOCUMENTS": (
        "documentId 与 extensions.persistedQuery 指向两个不同的文档。",
        "'documentId' and 'extensions.persistedQuery' name two documents.",
    ),
    "BODY_TOO_LARGE": ("请求体超过 {limit} 字节上限。", "The request body exceeds the limit of {limit} bytes."),
    "RATE_LIMITED": (
        "请求过于频繁（上限 {limit}），请 {seconds} 秒后再试。",
        "Too many requests (limit {limit}); try again in {seconds} s.",
    ),
    "QUERY_TOO_LARGE": (
        "查询展开片段后超过 {limit} 个字段（{definition}），请简化查询。",
        "The query holds more than {limit} fields once its fragments are expanded ({definition}); simplify it.",
    ),
    "HEADER_INVALID": ("请求头 {header} 无效：{rule}", "The {header} header is not valid: {rule}"),
    "FORM_FIELDS_TOO_MANY": (
        "一次最多检索 {limit} 个表单字段（本次 {count} 个）。",
        "At most {limit} form fields in one search ({count} sent).",
    ),
    "FORM_FIELD_INVALID": (
        "表单字段名称须为 1 至 {limit} 个字符的文本。",
        "A form field label is text of 1 to {limit} characters.",
    ),
    "OPERATOR_REQUIRED": (
        "须在 X-Operator 头中注明经办人（谁经手，谁负责：第二十二条）。",
        "Name the acting officer in the X-Operator header (whoever handles the data answers for it: Art 22).",
    ),
    "HEADER_OPERATOR_RULE": (
        "经办人标识至多 64 个可打印 ASCII 字符，且只能发送一次。",
        "an operator id is at most 64 printable ASCII characters, sent once.",
    ),
    "HEADER_PURPOSE_RULE": (
        "须为履职事项编码（如 hrss.insurance-enrolment，至多 80 个字符），且只能发送一次。",
        "a business-matter code (like hrss.insurance-enrolment, at most 80 characters), sent once.",
    ),
    "RATE_LIMIT_UNAVAILABLE": (
        "访问频率计数服务（Redis）暂不可用，为防止超限访问，本请求被拒绝，请稍后再试。",
        "The rate-limit counter (Redis) cannot be reached; requests are refused until it is back. Try again later.",
    ),
    "COST_BUDGET_EXCEEDED": (
        "本应用密钥在本时段的查询量（行数 × 信息项数，上限 {budget}）已用完，请 {seconds} 秒后再试。",
        "This key has used up its budget of rows x items ({budget}); try again in {seconds} s.",
    ),
    "BATCH_NOT_SUPPORTED": ("每个请求只能包含一个 GraphQL 操作。", "Send one GraphQL operation per request."),
    "METHOD_NOT_ALLOWED": ("请使用 POST 方法：{detail}", "Use POST: {detail}"),
    "METHOD_POST_ONLY": ("此地址只接受 POST 请求。", "this address answers POST requests only."),
    "METHOD_GET_OR_POST_ONLY": (
        "此地址只接受 POST 请求，以及只用于查询的 GET 请求。",
        "this address answers POST, and GET for queries only.",
    ),
    "METHOD_MUTATION_POST_ONLY": (
        "变更操作（mutation）只能用 POST 发送，GET 只用于查询。",
        "a mutation is sent with POST only; GET is for queries.",
    ),
    "CORS_ORIGIN_NOT_ALLOWED": (
        "此来源（Origin）的浏览器应用未获准调用本接口（配置项 cors_origins）。",
        "Browser applications of this origin may not call this endpoint (setting cors_origins).",
    ),
    "CORS_PREFLIGHT_REFUSED": (
        "跨域预检被拒绝：本接口只接受方法 {allowed_methods}，请求头 {allowed_headers}。",
        "The preflight is refused: this endpoint takes the methods {allowed_methods} and the headers {allowed_headers} only.",
    ),
    "UNSUPPORTED_MEDIA_TYPE": (
        "请求体须为 JSON，并带 Content-Type: application/json（字符集为 UTF-8）。",
        "Send the body as JSON with 'Content-Type: application/json' (in UTF-8).",
    ),
    "GRAPHQL_INVALID": (
        "GraphQL 文档或其变量无效（语法、字段或参数不存在、超出深度/别名/长度限制、变量类型不符），具体见 message。",
        "The GraphQL document or its variables are not valid (syntax, an unknown field or argument, a depth, alias or "
        "size limit, a variable of the wrong type): message says which.",
    ),
    "OPERATION_NOT_FOUND": (
        "文档中没有名为 {name} 的操作（operationName）。",
        "The document has no operation named {name} (operationName).",
    ),
    "OPERATION_NAME_REQUIRED": (
        "文档含 {count} 个操作，请用 operationName 指明执行哪一个。",
        "The document holds {count} operations: name the one to run in operationName.",
    ),
    "URI_TOO_LONG": (
        "GET 请求的查询参数超过 {limit} 字节上限，请改用 POST。",
        "The GET request's parameters exceed the limit of {limit} bytes; send it with POST.",
    ),
    "PURPOSE_REQUIRED": (
        "查询数据须在 X-Purpose 头中声明用途（履职事项编码）。",
        "Reading data requires a declared purpose (business-matter code) in the X-Purpose header.",
    ),
    "PURPOSE_NOT_REGISTERED": (
        "用途 {purpose} 未登记为本部门（{department}）的履职事项。",
        "Purpose {purpose} is not a business matter registered for department {department}.",
    ),
    "NOT_SHARED": ("{resource}.{item} 属于不予共享类信息。", "{resource}.{item} is not shared (不予共享)."),
    "NO_GRANT": (
        "{resource}.{item} 属于有条件共享类，本部门没有有效的共享授权。",
        "{resource}.{item} is shared on condition and your department has no grant for it.",
    ),
    "PURPOSE_NOT_APPROVED": (
        "共享授权 {grant} 未批准用途 {purpose} 使用 {resource}.{item}。",
        "Grant {grant} does not approve purpose {purpose} for {resource}.{item}.",
    ),
    "GRANT_EXPIRED": ("共享授权 {grant} 已于 {until} 到期。", "Grant {grant} expired at {until}."),
    "GRANT_NOT_YET_VALID": ("共享授权 {grant} 自 {since} 起生效。", "Grant {grant} takes effect at {since}."),
    "APPLICATION_PENDING": (
        "共享申请 {grant} 正等待提供部门答复，答复期限 {since}；逾期未答复视为同意。",
        "Application {grant} awaits the provider's answer, due {since}; no answer by then approves it.",
    ),
    "GRANT_REVOKED": ("共享授权 {grant} 已被撤销。", "Grant {grant} has been revoked."),
    "NOT_RELATED_DEPARTMENT": (
        "{resource} 仅在相关部门之间共享，本部门不在其列。",
        "{resource} is shared only among its related departments, and yours is not one of them.",
    ),
    "DEPARTMENT_RESTRICTED": (
        "本部门使用 {resource} 的权益已被限制：{detail}",
        "Your department's use of {resource} is restricted: {detail}",
    ),
    "ITEM_UNKNOWN": ("{resource} 没有信息项 {item}。", "{resource} has no data item {item}."),
    "RESOURCE_RETIRED": (
        "资源 {resource} 已从目录中撤销（退出共享），不再提供，原有共享授权随之停止。",
        "Resource {resource} has been retired from the catalog: it is no longer available, and its grants have stopped.",
    ),
    "RESOURCE_NOT_PUBLISHED": (
        "资源 {resource} 不在现行目录的已发布资源中，不予提供。",
        "Resource {resource} is not a published resource of the catalog in force: not available.",
    ),
    "FILTER_NOT_ALLOWED": (
        "不能按无权读取的信息项 {item} 筛选或查找：{reason}",
        "You cannot filter or look up by {item}, which you may not read: {reason}",
    ),
    "MASKED": (
        "{item} 对你脱敏显示，不能按它筛选、查询或关联。",
        "{item} is masked for you: it cannot be filtered on, looked up or linked by.",
    ),
    "MASK_UNDONE": (
        "{item} 的脱敏会被你可读取的其他信息项还原，已拒绝提供，请联系提供部门调整授权。",
        "{item} is withheld: what else you may read would undo its mask; ask the provider to change the grant.",
    ),
    "FILTER_TOO_MANY_VALUES": (
        "{item} 的筛选最多列出 {limit} 个值。",
        "A filter on {item} may list at most {limit} values.",
    ),
    "GRANT_SCOPE_TOO_WIDE": (
        "行范围中 {item} 最多 {limit} 个不同的值（现为 {count} 个）。",
        "A row scope on {item} may hold at most {limit} distinct values ({count} given).",
    ),
    "FILTER_VALUE_INVALID": (
        "{item} 的筛选值含有不能存储的字符（空字符或不成对的代理项）。",
        "The filter value for {item} holds characters no source stores (NUL or a lone surrogate).",
    ),
    "ITEM_OUT_OF_SCOPE": (
        "信息项 {item} 只在授权范围内的记录中提供，其他记录中为空。",
        "{item} is given only in the rows your grants cover for it; it is null in the others.",
    ),
    "OUT_OF_SCOPE": ("查询条件超出共享授权的行范围：{detail}", "The query goes beyond the grant's row scope: {detail}"),
    "NOT_FOUND_IN_SCOPE": ("在共享授权的行范围内没有找到该记录。", "No such record within your grant's row scope."),
    "PAGE_SIZE_INVALID": (
        "每页条数须在 1 到 {limit} 之间，请求了 {requested} 条。",
        "A page holds 1 to {limit} rows; {requested} were asked for.",
    ),
    "PAGE_SIZE_TOO_LARGE": (
        "每页最多 {limit} 条，请求了 {requested} 条。",
        "At most {limit} rows a page; {requested} were asked for.",
    ),
    "LINK_TOO_LARGE": (
        "关联查询结果超过 {limit} 条，请缩小上层查询范围。",
        "The link returns more than {limit} rows; narrow the query above it.",
    ),
    "REPRESENTATIONS_TOO_MANY": (
        "_entities 一次最多 {limit} 个实体引用，请求了 {requested} 个。",
        "_entities takes at most {limit} representations at once; {requested} were sent.",
    ),
    "ENTITY_TYPE_UNKNOWN": (
        "实体引用的 __typename 不是本子图可查询的实体类型。",
        "The representation's __typename is no entity type this subgraph answers you.",
    ),
    "REPRESENTATION_INVALID": (
        "实体引用缺少 {type} 的键 {field}，或其值类型不符。",
        "The representation lacks the key {field} of {type}, or its value has the wrong type.",
    ),
    "COST_TOO_HIGH": (
        "本次查询的结果超过 {limit} 个数据项（行数 × 信息项数），请缩小查询。",
        "The query answers more than {limit} values (rows x items); narrow it.",
    ),
    "BAD_CURSOR": ("分页游标无效。", "The page cursor is not valid."),
    "SOURCE_UNAVAILABLE": (
        "提供部门的数据源暂不可用：{resource}。",
        "The provider's source is unavailable: {resource}.",
    ),
    "POLICY_UNCONFIRMED": (
        "本服务已超过 {seconds} 秒未能确认在用的共享策略（平台数据库不可达或策略无法加载），暂停应答查询；请稍后重试。",
        "This server has not been able to confirm the sharing policies in force for over {seconds} s (the platform "
        "database unreachable, or the policies cannot be loaded): queries are refused until it can; retry later.",
    ),
    "AUDIT_UNAVAILABLE": (
        "访问记录无法写入，本次查询不返回数据。",
        "The access record could not be written, so no data is returned.",
    ),
    "INTERNAL_ERROR": ("服务内部错误，已记录。", "Internal error; it has been logged."),
    # Catalog validation
    "CATALOG_INVALID": (
        "目录有 {count} 处错误，已整体拒绝，现行目录保持不变。",
        "The catalog has {count} problem(s) and was refused as a whole; the catalog in force is unchanged.",
    ),
    "FILE_UNREADABLE": ("无法读取文件：{detail}", "cannot read the file: {detail}"),
    "TOML_SYNTAX": ("TOML 语法错误：{detail}", "TOML syntax error: {detail}"),
    "FIELD_REQUIRED": ("缺少必填字段。{detail}", "a required field is missing. {detail}"),
    "FIELD_INVALID": ("取值无效：{detail}", "invalid value: {detail}"),
    "FIELD_UNKNOWN": ("未知字段：{detail}", "unknown field: {detail}"),
    "DUPLICATE": ("重复定义：{detail}", "defined twice: {detail}"),
    "UNKNOWN_REFERENCE": ("引用了不存在的对象：{detail}", "refers to something that does not exist: {detail}"),
    "CATALOG_EMPTY": ("没有找到目录文件。{detail}", "no catalog files found. {detail}"),
    "SOURCE_MISMATCH": ("数据源与目录不符：{detail}", "the source does not match the catalog: {detail}"),
    "SUBJECT_WRONG_TYPE": (
        "只有文本类信息项可以声明数据主体（subject）：{detail}",
        "only a text item can declare a data subject (subject): {detail}",
    ),
    "PARTS_WRONG_TYPE": (
        "只有文本或日期类信息项可以声明组成部分（parts）：{detail}",
        "only a text or date item can declare parts: {detail}",
    ),
    "PARTS_OUT_OF_RANGE": (
        "组成部分的字符位置超出取值长度：{detail}",
        "a part's character positions lie outside the value's length: {detail}",
    ),
    "PARTS_OVERLAP": (
        "两个组成部分占用了同一字符位置：{detail}",
        "two parts claim the same character position: {detail}",
    ),
    "FACT_LENGTH_MISMATCH": (
        "同一资源中同名事实的字符数不一致：{detail}",
        "the same fact has a different number of characters in two items of one resource: {detail}",
    ),
    # Catalog workbooks (.xlsx: catalog/xlsx.py)
    "XLSX_INVALID": ("不是可读取的 .xlsx 工作簿：{detail}", "not a readable .xlsx workbook: {detail}"),
    "XLSX_TOO_LARGE": ("工作簿过大：{detail}", "the workbook is too large: {detail}"),
    "XLSX_SHEET_MISSING": ("缺少工作表：{detail}", "a sheet is missing: {detail}"),
    "XLSX_COLUMN_MISSING": ("表头缺少必需的列：{detail}", "the header lacks a required column: {detail}"),
    "XLSX_FORMULA": (
        "单元格是公式而不是取值，请填写值：{detail}",
        "the cell holds a formula, not a value; write the value: {detail}",
    ),
    "XLSX_ROW_MISMATCH": (
        "同一资源各行的取值不一致：{detail}",
        "the rows of one resource disagree: {detail}",
    ),
    # Administration
    "DEPARTMENT_NOT_FOUND": ("部门 {department} 不存在。", "Department {department} does not exist."),
    "RESOURCE_NOT_FOUND": (
        "资源 {resource} 不存在或未发布。",
        "Resource {resource} does not exist or is not published.",
    ),
    "ITEM_NOT_FOUND": ("资源 {resource} 没有信息项 {item}。", "Resource {resource} has no data item {item}."),
    "PURPOSE_NOT_FOUND": (
        "部门 {department} 没有登记用途 {purpose}。",
        "Department {department} has no registered purpose {purpose}.",
    ),
    "KEY_NOT_FOUND": ("应用密钥 {key} 不存在。", "Application key {key} does not exist."),
    "GRANT_NOT_FOUND": ("共享授权 {grant} 不存在。", "Grant {grant} does not exist."),
    "DEPARTMENT_NOT_OVERDUE": (
        "部门 {department} 没有逾期未更新的资源，不能以第二十条为由限制。",
        "Department {department} has no overdue resource: there is nothing to restrict it for under Art 20.",
    ),
    "FRESHNESS_CURRENT": ("按期更新", "current"),
    "FRESHNESS_OVERDUE": ("逾期未更新", "overdue"),
    "FRESHNESS_IRREGULAR": ("不定期更新", "irregular"),
    "FRESHNESS_UNKNOWN": ("更新时间未知", "unknown"),
    "CLI_FRESHNESS_TIMES": (
        "最后更新 {last_change}，应更新期限 {due_by}",
        "last change {last_change}, due by {due_by}",
    ),
    "CLI_OVERDUE_COUNT": ("逾期未更新的资源：{count} 个。", "Overdue resources: {count}."),
    "CLI_FRESHNESS_UNKNOWN": (
        "更新时间未知（未声明更新时间来源或尚未读取成功）：{resources}",
        "Last change unknown (no change source declared, or never read): {resources}",
    ),
    "CLI_OVERDUE_EVERY_RESOURCE": (
        "--overdue 限制该部门使用全部资源，不能与其他 --resource 同用。",
        "--overdue restricts the department from every resource; it takes no other --resource.",
    ),
    "CLI_RESOURCE_REQUIRED": ("须给出 --resource（或 --overdue）。", "Give --resource (or --overdue)."),
    "CLI_RESTRICTION_OVERDUE_FACT": (
        "逾期：{resource}（{cycle}）最后更新 {last_change}，应于 {due_by} 前更新",
        "overdue: {resource} ({cycle}) last changed {last_change}, due by {due_by}",
    ),
    "RESTRICTION_NOT_FOUND": ("限制规则 {restriction} 不存在。", "Restriction {restriction} does not exist."),
    "APPLICATION_INVALID": (
        "共享申请有 {count} 处问题，未受理。",
        "The application has {count} problem(s) and was not accepted.",
    ),
    "APPLICATION_NOT_FOUND": ("共享申请 {application} 不存在。", "Application {application} does not exist."),
    "APPLICATION_ANSWERED": (
        "共享申请 {application} 已答复（{status}）。",
        "Application {application} is already answered ({status}).",
    ),
    "APPLICATION_DEEMED_APPROVED": (
        "共享申请 {application} 已逾期未答复，视为同意（第十九条）。",
        "Application {application} was not answered by its deadline and is approved by silence (Art 19).",
    ),
    "NOT_YOUR_RESOURCE": (
        "只有提供部门可以审核共享申请 {application}。",
        "Only the providing department reviews application {application}.",
    ),
    "SUBJECT_SERVICE_ONLY": (
        "只有具有 {role} 角色的密钥（政务服务大厅）可以查询数据主体的访问记录。",
        "Only a key with the role {role} (a service hall) may look up a data subject's accesses.",
    ),
    "SUBJECT_ARGUMENT_REQUIRED": (
        "须给出公民身份号码 idNumber 或统一社会信用代码 creditCode，且只给一个。",
        "Give either idNumber or creditCode, exactly one of them.",
    ),
    "ID_NUMBER_INVALID": (
        "不是有效的公民身份号码（GB 11643：18 位，出生日期真实，校验码正确）。",
        "Not a valid citizen ID number (GB 11643: 18 characters, a real birth date, the right check character).",
    ),
    "CREDIT_CODE_INVALID": (
        "不是有效的统一社会信用代码（GB 32100：18 位，校验码正确）。",
        "Not a valid unified social credit code (GB 32100: 18 characters, the right check character).",
    ),
    "REPORT_RECORD_NOT_FOUND": (
        "没有可供本部门在所声明用途下读取该信息项的、具有此主键值的记录，纠错报告未受理。",
        "No record with that key whose item this department may read under the declared purpose: "
        "the report was not accepted.",
    ),
    "REPORT_ITEM_MASKED": (
        "信息项 {item} 对本部门脱敏显示，不能就其提出纠错报告。",
        "Data item {item} is shown masked to this department: it cannot report on it.",
    ),
    "REPORT_ALREADY_OPEN": (
        "本部门对该记录的该信息项已有未答复的纠错报告 {report}，请等待提供部门答复。",
        "Your department already has an open report on this item of this record ({report}): wait for the "
        "provider's answer.",
    ),
    "CATALOG_SUBMISSION_LIMIT_REACHED": (
        "本部门未办结的目录编报（草稿与审核中）已达 {limit} 件，请待审核或撤回后再报。",
        "Your department has {limit} catalog submissions open (drafts and under review): submit again once they are "
        "reviewed.",
    ),
    "REPORT_LIMIT_REACHED": (
        "本部门未答复的纠错报告已达 {limit} 件，请待提供部门答复后再报。",
        "Your department has {limit} open data-error reports: report again once the providers have answered.",
    ),
    "REPORT_TEXT_INVALID": (
        "{field} 超过 {limit} 个字符，或含有无法保存的字符。",
        "{field} is longer than {limit} characters or holds characters that cannot be stored.",
    ),
    "REPORT_REASON_HAS_KEY": (
        "理由中不得重复记录的主键值（理由对共享主管部门可见，主键值不可见）。",
        "The reason must not repeat the record's key (the coordinator reads the reason, not the key).",
    ),
    "DATA_ERROR_NOT_FOUND": ("数据纠错报告 {report} 不存在。", "Data-error report {report} does not exist."),
    "DATA_ERROR_ANSWERED": (
        "数据纠错报告 {report} 已答复（{status}）。",
        "Data-error report {report} is already answered ({status}).",
    ),
    "DATA_ERROR_OUTCOME_INVALID": (
        "答复结果 {outcome} 无效，可选：{outcomes}。",
        "Outcome {outcome} is not one of: {outcomes}.",
    ),
    "DATA_ERROR_NOT_YOUR_RESOURCE": (
        "只有提供部门可以答复数据纠错报告 {report}。",
        "Only the providing department answers data-error report {report}.",
    ),
    "NOTHING_TO_APPLY": (
        "{resource} 属于无条件共享类，无需申请，声明用途即可直接查询。",
        "{resource} is shared unconditionally: there is nothing to apply for; query it under a declared purpose.",
    ),
    "FIELD_REQUIRED_USERS": ("须写明使用对象。", "Name the users (使用对象)."),
    "SHARE_MODE_INVALID": ("共享方式 {mode} 无效，可选：{modes}。", "Share mode {mode} is not one of: {modes}."),
    "END_IN_PAST": ("截止时间已过。", "The end date is in the past."),
    "END_TOO_FAR": ("截止时间超过 {days} 天的上限。", "The end date is more than {days} days away."),
    "ACKNOWLEDGEMENT_REQUIRED": (
        "须承诺仅按申请用途使用、不向第三方提供（第二十二条）。",
        "Acknowledge purpose-only use and no onward transfer (Art 22).",
    ),
    "NARROWING_INVALID": ("审核只能缩小申请的范围：{detail}", "An approval can only narrow the application: {detail}"),
    "ROLE_UNKNOWN": ("角色 {role} 无效，可选：{roles}。", "Role {role} is not one of: {roles}."),
    "FORBIDDEN": ("本应用密钥没有“{role}”角色。", "This key lacks the {role} role."),
    "NOT_YOUR_APPLICATION": (
        "只有申请部门可以就共享申请 {application} 提请协调。",
        "Only the applying department can send application {application} to coordination.",
    ),
    "COORDINATION_NOT_ALLOWED": (
        "只有被拒绝的申请或不予共享类资源的申请可以提请协调。",
        "Only a refused application, or one for a not-shared resource, can go to coordination.",
    ),
    "KEY_ALREADY_REVOKED": ("应用密钥 {key} 已经吊销。", "Application key {key} is already revoked."),
    "GRANT_ALREADY_REVOKED": ("共享授权 {grant} 已经撤销。", "Grant {grant} is already revoked."),
    "GRANT_FOR_PROVIDER": (
        "{department} 是 {resource} 的提供部门，始终可以读取，无需授权。",
        "{department} provides {resource} and always reads it; it needs no grant.",
    ),
    "GRANT_NO_ITEMS": ("共享授权须列出至少一个信息项。", "A grant names at least one data item."),
    "GRANT_NO_PURPOSES": ("共享授权须列出至少一个用途。", "A grant names at least one purpose."),
    "GRANT_BAD_MASK": (
        "信息项 {item} 的脱敏方式 {mask} 无效，可选：{kinds}。",
        "Mask {mask} for {item} is not one of: {kinds}.",
    ),
    "GRANT_MASK_WRONG_TYPE": (
        "脱敏方式 {mask} 不适用于 {type} 类型的信息项 {item}。",
        "Mask {mask} does not apply to {item}, an item of type {type}.",
    ),
    "GRANT_MASK_NOT_COVERED": (
        "脱敏的信息项 {item} 不在授权范围内。",
        "The masked item {item} is not covered by the grant.",
    ),
    "GRANT_SCOPE_NOT_FILTERABLE": (
        "行范围不能限定在 {item} 上：它既不在授权的信息项中，也不可筛选。",
        "The row scope cannot be on {item}: it is neither an item of the grant nor filterable.",
    ),
    "GRANT_ALREADY_EXPIRED": (
        "截止时间 {until} 已过：这项授权不会开放任何数据。确需补录请加 --force。",
        "The end, {until}, has passed: this grant would open no data. Add --force to record it anyway.",
    ),
    "GRANT_MASK_UNDONE": (
        "{resource}.{item} 的脱敏（{mask}，{grant}）会被还原：同一部门还可从 {revealing} 读到它隐去的 {facts}。",
        "The mask {mask} on {resource}.{item} ({grant}) would be undone: the same department may also read what it hides, {facts}, from {revealing}.",
    ),
    "GRANT_SCOPE_VALUE_TYPE": (
        "行范围中 {item} 的值 {value} 不是 {type} 类型的值。",
        "Row scope value {value} for {item} is not a value of type {type}.",
    ),
    "GRANT_EMPTY_SCOPE": (
        "信息项 {item} 的行范围至少要有一个值。",
        "The row scope on {item} needs at least one value.",
    ),
    "GRANT_BAD_PERIOD": ("截止时间须晚于生效时间。", "The end must be after the start."),
    "GRANT_NOT_SHARED_ITEMS": (
        "{items} 属于不予共享类：只有引用法律依据的依法共享授权（--legal-basis）才能开放。",
        "{items} not shared (不予共享): only a legal-basis grant citing the law (--legal-basis) can open them.",
    ),
    "REASON_REQUIRED": ("须填写理由。", "A reason is required."),
    "RESTRICTION_ALREADY_LIFTED": ("限制规则 {restriction} 已经解除。", "Restriction {restriction} is already lifted."),
    # The catalog kept by its departments (catalog/workflow.py)
    "CATALOG_NOT_OWN_ENTRY": (
        "属于其他部门的目录条目，只能由该部门编报：{detail}",
        "an entry of another department, which only that department submits: {detail}",
    ),
    "CATALOG_ONE_DEPARTMENT": (
        "一次只能编报一个部门的目录条目（本次为 {count} 个部门）。",
        "A submission holds the entries of one department ({count} given).",
    ),
    "CATALOG_NOT_YOUR_DEPARTMENT": (
        "只能编报、撤销本部门的目录条目（{department} 不是本部门，或本密钥没有“reviewer”角色）。",
        "You may submit and retire only your own department's entries ({department} is not yours, or this key "
        "lacks the reviewer role).",
    ),
    "CATALOG_NO_CHANGE": (
        "{department} 的目录条目与现行目录相同，没有需要审核的变更。",
        "{department}'s entries are the same as in the catalog in force: nothing to review.",
    ),
    "CATALOG_SUBMISSION_NOT_FOUND": (
        "目录编报 {submission} 不存在。",
        "Catalog submission {submission} does not exist.",
    ),
    "CATALOG_SUBMISSION_STATE": (
        "目录编报 {submission} 当前为“{status}”，不能办理此环节。",
        "Catalog submission {submission} is {status}: this step does not apply.",
    ),
    "CATALOG_RESOURCE_RETIRED": (
        "{resource} 已撤销，不能重新编报发布（其原有共享授权随撤销停止，重新发布会使之恢复）；请以新的资源编码编报。",
        "{resource} was retired and cannot be submitted for publishing again (publishing it would revive the grants "
        "its retirement stopped); submit it under a new resource code.",
    ),
    "CATALOG_SOURCE_NOT_YOURS": (
        "部门的数据源由共享主管部门登记，编报不能更改（{department} 的 source 与现行目录不同）。",
        "A department's source is registered by the coordinating authority; a submission cannot change it "
        "({department}'s source differs from the catalog in force).",
    ),
    "CATALOG_SOURCE_NOT_ALLOWED": (
        "部门的数据源不能是共享平台自身的数据库（{department}）。",
        "A department's source cannot be the platform's own database ({department}).",
    ),
    "CATALOG_SUBMISSION_STALE": (
        "目录编报 {submission} 提交后，{resource} 在现行目录中已有变更；请按现行目录重新编报。",
        "{resource} changed in the catalog in force after submission {submission} was made: submit again on the "
        "catalog in force.",
    ),
    "CATALOG_OWN_SUBMISSION": (
        "不能审核自己提交的目录编报 {submission}，也不能审核本部门提交的。",
        "You cannot review catalog submission {submission}: it was submitted by you or your own department.",
    ),
    "CATALOG_NONCONFORMING": (
        "目录编报 {submission} 发布前的数据源核对发现 {count} 处错误，未发布；核对结果已记入编报。",
        "The check before publishing found {count} error(s) in submission {submission} against its sources: not "
        "published; the findings are recorded with the submission.",
    ),
    "CATALOG_NOT_PUBLISHED": (
        "资源 {resource} 当前为“{status}”，只有已发布的资源可以撤销。",
        "Resource {resource} is {status}: only a published resource can be retired.",
    ),
    "CATALOG_NOT_YOUR_RESOURCE": (
        "只有提供部门或共享主管部门可以撤销资源 {resource}。",
        "Only the providing department or the coordinating authority retires resource {resource}.",
    ),
    "CATALOG_CHANGED_MEANWHILE": (
        "办理期间现行目录已有变更，未生效；请重新办理。",
        "The catalog in force changed meanwhile: nothing was changed; do it again.",
    ),
    "CATALOG_REPUBLISHED": (
        "{resource} 已撤销，此次加载使其重新发布。",
        "{resource} was retired; this load publishes it again.",
    ),
    "CATALOG_VERSION_NOT_FOUND": ("目录第 {version} 版不存在。", "Catalog version {version} does not exist."),
    "CLI_CATALOG_KEPT": (
        "{resource} 不在所加载的文件中，保持现状（如需退出共享请用 govshare catalog retire）。",
        "{resource} is not in the loaded file and stays as it is (retire it with govshare catalog retire).",
    ),
    "CLI_CATALOG_SUBMITTED": (
        "目录编报 {submission}（{department}），状态 {state}：变更资源 {resources}；数据源核对 {errors} 处错误、{warnings} 处提示。",
        "Catalog submission {submission} ({department}) is {state}: resources changed {resources}; source check: "
        "{errors} error(s), {warnings} warning(s).",
    ),
    "CLI_CATALOG_PUBLISHED": (
        "目录编报 {submission} 已发布，目录第 {version} 版已生效。",
        "Catalog submission {submission} is published: catalog version {version} is in force.",
    ),
    "CLI_CATALOG_RETURNED": (
        "目录编报 {submission} 已退回：{reason}",
        "Catalog submission {submission} was returned: {reason}",
    ),
    "CLI_CATALOG_RETIRED": (
        "资源 {resource} 已撤销，目录第 {version} 版已生效。",
        "Resource {resource} is retired: catalog version {version} is in force.",
    ),
    "CLI_CATALOG_SENT": ("目录编报 {submission} 已送审。", "Catalog submission {submission} was sent for review."),
    "CLI_CATALOG_NO_DIFF": ("两版之间没有差异。", "The two versions do not differ."),
    "CLI_CATALOG_NO_SUBMISSIONS": ("没有目录编报。", "No catalog submissions."),
    # GET /metrics (govshare/metrics.py) and GET /readyz (server.py).
    "METRICS_TOKEN_REQUIRED": (
        "读取监控指标须提供 metrics_token：请在 Authorization 头中以 Bearer 方式发送。",
        "Reading the metrics needs the metrics_token: send it as 'Authorization: Bearer <token>'.",
    ),
    "METRICS_NOT_ALLOWED": (
        "未设置 metrics_token 时，监控指标只对本机回环地址上的直接请求开放（不经代理）。",
        "Without a metrics_token the metrics are open only to direct requests from this machine's loopback (not through "
        "a proxy).",
    ),
    "METRICS_TOKEN_TOO_SHORT": (
        "metrics_token 至少须有 {minimum} 个字符。",
        "metrics_token must have at least {minimum} characters.",
    ),
    "NOT_READY": ("本服务尚未就绪：{checks}。", "This server is not ready: {checks}."),
    "PLATFORM_DATABASE_UNREACHABLE": (
        "平台数据库不可达。",
        "The platform database cannot be reached.",
    ),
    "REDIS_UNREACHABLE": (
        "配置项 {settings} 所指的 Redis 不可达。",
        "The Redis that {settings} name cannot be reached.",
    ),
    "CATALOG_NOT_LOADED": (
        "尚未加载资源目录，请先运行 govshare catalog load 或 govshare demo。",
        "No catalog is loaded yet: run 'govshare catalog load' or 'govshare demo' first.",
    ),
    # The govshare command's own lines
    "CLI_DEMO_BUILT": (
        "演示世界已生成：{var}/（{count} 个部门的应用密钥见 {keys}）",
        "Demo world built in {var}/ (application keys of {count} departments in {keys})",
    ),
    "CLI_DEMO_EXISTS": (
        "演示世界已存在，未改动：{var}/（应用密钥见 {keys}；重建请加 --force）",
        "The demo world already exists in {var}/ and was left as it is (keys in {keys}; --force rebuilds it)",
    ),
    "CLI_CATALOG_LOADED": (
        "目录第 {version} 版已生效：{departments} 个部门，{resources} 个已发布资源。",
        "Catalog version {version} is in force: {departments} departments, {resources} published resources.",
    ),
    "CLI_CATALOG_EXPORTED": (
        "已导出 {departments} 个部门、{resources} 个资源（{items} 个信息项）到 {path}。",
        "Exported {departments} department(s), {resources} resource(s) ({items} data items) to {path}.",
    ),
    "CLI_CATALOG_OK": (
        "目录有效，{resources} 个已发布资源的数据源均与目录一致。",
        "The catalog is valid and the sources of all {resources} published resources match it.",
    ),
    "CLI_CATALOG_MISMATCHES": ("{count} 处与数据源不符。", "{count} mismatch(es) with the sources."),
    "CLI_CATALOG_CHECK_INVALID": (
        "目录文件有 {count} 处错误（仅作检查，未加载，现行目录未受影响）。",
        "The catalog file has {count} problem(s) (checked only: nothing was loaded, the "
        "catalog in force is not touched).",
    ),
    "DOCUMENT_NOT_TRUSTED": (
        "本应用未登记此 GraphQL 文档（或已撤回），本密钥只能发送已登记的文档。文档编号 {id}。",
        "This GraphQL document is not registered for this application (or was withdrawn); this key may send only "
        "registered documents. Document id {id}.",
    ),
    "DOCUMENT_ID_MISMATCH": (
        "请求中的文档编号与所附查询文本不符（文本的编号为 {id}）。",
        "The document id does not match the query text sent with it (the text's id is {id}).",
    ),
    "DOCUMENT_ID_INVALID": (
        "文档编号须为 sha256:<64 位十六进制> 或 64 位十六进制（文档文本 UTF-8 编码的 SHA-256）。",
        "A document id is sha256:<64 hex digits> or the 64 hex digits (the SHA-256 of the document's UTF-8 text).",
    ),
    "DOCUMENT_INVALID": ("文档 {name} 无效：{detail}", "Document {name} is not valid: {detail}"),
    "TRUSTED_DOCUMENT_NOT_FOUND": (
        "应用 {application} 没有登记编号为 {document} 的文档（或已撤回）。",
        "Application {application} has no registered document {document} (or it was withdrawn).",
    ),
    "CLI_DOCUMENT_REGISTERED": (
        "已登记 {id}  {name}（操作：{operations}）",
        "Registered {id}  {name} (operations: {operations})",
    ),
    "CLI_DOCUMENT_ALREADY": ("已登记过 {id}  {name}，未改动", "Already registered {id}  {name}; unchanged"),
    "CLI_DOCUMENT_WITHDRAWN": ("已撤回 {document}。", "Withdrawn {document}."),
    "CLI_DOCUMENTS_NONE": (
        "应用 {application} 没有登记文档。",
        "Application {application} has no registered documents.",
    ),
    "CLI_DOCUMENTS_ONLY_ON": (
        "密钥 {key_id} 今后只能发送应用 {application} 已登记的文档。",
        "Key {key_id} may now send only the documents registered for {application}.",
    ),
    "CLI_DOCUMENTS_ONLY_OFF": (
        "密钥 {key_id} 不再限于已登记的文档。",
        "Key {key_id} is no longer limited to registered documents.",
    ),
    "CLI_DOCUMENTS_ONLY_UNCHANGED": ("密钥 {key_id} 已是该状态，未改动。", "Key {key_id} is already so; unchanged."),
    "CLI_KEY_STATE_TRUSTED_ONLY": ("仅限已登记文档", "trusted documents only"),
    "CLI_KEY_CREATED": (
        "密钥编号 {key_id}（{department} / {application}）。请立即保存，此后无法再次查看：",
        "Key {key_id} ({department} / {application}). Save it now; it cannot be shown again:",
    ),
    "CLI_KEY_REVOKED": ("密钥 {key_id} 已吊销。", "Key {key_id} has been revoked."),
    "CLI_KEY_STATE_ACTIVE": ("有效", "active"),
    "CLI_KEY_STATE_REVOKED": ("吊销于 {at}", "revoked at {at}"),
    "CLI_GRANT_REVOKED": ("授权 {grant} 已撤销。", "Grant {grant} has been revoked."),
    "CLI_GRANT_STATE_REVOKED": ("已撤销", "revoked"),
    "CLI_GRANT_STATE_IN_FORCE": ("生效中", "in force"),
    "CLI_GRANT_STATE_NOT_YET": ("尚未生效", "not yet in force"),
    "CLI_GRANT_STATE_EXPIRED": ("已到期", "expired"),
    "CLI_GRANT_SCOPE": ("行范围 {scope}", "row scope {scope}"),
    "CLI_GRANT_MASKS": ("脱敏 {masks}", "masks {masks}"),
    "CLI_GRANT_EXPIRED_FORCED": (
        "注意：该授权已于 {until} 到期，按 --force 仍予创建，它不会开放任何数据。",
        "Note: this grant ended at {until}; created because of --force, it opens no data.",
    ),
    "CLI_CATALOG_MASK_UNDONE": (
        "警告：{detail} 请撤销或修改该授权；在此之前查询服务拒绝该脱敏信息项。",
        "Warning: {detail} Revoke or change that grant; until then the query service denies the masked item.",
    ),
    "CLI_RESTRICTION_LIFTED": ("限制 {restriction} 已解除。", "Restriction {restriction} has been lifted."),
    "CLI_CALENDAR_LOADED": (
        "{year} 年节假日安排已加载：{holidays} 个放假日，{workdays} 个调休上班日。",
        "The {year} schedule is loaded: {holidays} holidays, {workdays} make-up working days.",
    ),
    "CLI_CALENDAR_ROW": (
        "{year}  放假 {holidays} 天  调休上班 {workdays} 天  {source}",
        "{year}  {holidays} holidays  {workdays} make-up days  {source}",
    ),
    "CLI_SUBJECT_ACCESS": (
        "{at}  {department}/{application}  经办人 {operator}  用途 {purpose}  {resource} {operation}  "
        "信息项 {items}（脱敏 {masked}）  授权 {grants}  涉及信息项 {as_items}",
        "{at}  {department}/{application}  officer {operator}  purpose {purpose}  {resource} {operation}  "
        "items {items} (masked {masked})  grants {grants}  as {as_items}",
    ),
    "CLI_SUBJECT_NONE": ("没有涉及该主体的数据访问记录。", "No access to records about this subject."),
    "CLI_SUBJECT_MORE": (
        "只列出了最新的 {first} 条，还有更早的（--first 可调大）。",
        "Only the newest {first} are listed; there are older ones (raise --first).",
    ),
    "CLI_CHAIN_OK": ("{chain} 记录链完整：{count} 条。", "The {chain} chain is intact: {count} records."),
    "CLI_CHAIN_BROKEN": (
        "{chain} 记录链在第 {seq} 条处断开：{problem}。",
        "The {chain} chain breaks at record {seq}: {problem}.",
    ),
    "CLI_CHAIN_NOT_COVERED": (
        "{chain} 记录链第 {first}–{last} 条（{count} 条）晚于最后一个有效检查点，尚未被检查点覆盖。",
        "{chain} records {first}-{last} ({count}) are newer than the last valid checkpoint: not yet covered.",
    ),
    "CLI_CHECKPOINT_LAST": (
        "最后一个有效检查点：#{number}，写于 {at}，摘要 {digest}（可与服务日志中的检查点记录核对）。",
        "Last valid checkpoint: #{number}, written {at}, digest {digest} (compare with the server's log).",
    ),
    "CLI_CHECKPOINT_NONE": ("检查点文件 {path} 中没有有效检查点。", "No valid checkpoint in {path}."),
    "CLI_CHECKPOINT_FAULT": (
        "检查点文件第 {line} 行（检查点 #{number}）未通过核验：[{fault}] {text}",
        "Checkpoint file line {line} (checkpoint #{number}) fails verification: [{fault}] {text}",
    ),
    "CLI_CHECKPOINT_WRITTEN": (
        "检查点 #{number} 已签名写入 {path}：{heads}",
        "Checkpoint #{number} signed and written to {path}: {heads}",
    ),
    "CLI_AUDIT_FAILED": ("{count} 处未通过核验。", "{count} finding(s) failed verification."),
    "CLI_VERIFY_DEV_KEY": (
        "未配置 audit_verify_public_key：用开发环境签名私钥 {path} 的公钥 {key} 核验。该私钥在 var/ 下，"
        "能改写 var/ 的人也能改写它，这只供开发使用；生产环境必须配置公钥。",
        "No audit_verify_public_key configured: checking with the public half of the development key {path} "
        "({key}). Whoever can rewrite var/ can rewrite that key too: development only; production "
        "requires the public key in its configuration.",
    ),
    "CLI_KEYGEN_WRITTEN": (
        "审计检查点签名私钥已写入 {path}（仅属主可读）。把它放在平台数据库和 var/ 之外，"
        "并把下面的公钥配置为核验用的 audit_verify_public_key：",
        "The checkpoint signing key is written to {path} (readable by its owner only). Keep it away from "
        "the platform database and var/, and configure the public key below as audit_verify_public_key:",
    ),
    # Why a checkpoint fails verification (audit/checkpoints.py)
    "CHECKPOINT_MALFORMED": ("不是检查点（{detail}）。", "not a checkpoint ({detail})."),
    "CHECKPOINT_UNSIGNED": ("没有签名。", "it carries no signature."),
    "CHECKPOINT_UNKNOWN_KEY": (
        "签名所用的密钥 {detail} 不是配置的核验公钥。",
        "signed with key {detail}, which is not a configured verification key.",
    ),
    "CHECKPOINT_SIGNATURE_INVALID": (
        "签名不符：内容在签名后被改写。",
        "the signature does not match: it was rewritten after signing.",
    ),
    "CHECKPOINT_GAP": (
        "不接续前一个检查点（{detail}）：其前的检查点被删除或改写。",
        "it does not follow the checkpoint before it ({detail}): checkpoints before it were removed or rewritten.",
    ),
    # Archives (audit/archives.py, govshare audit archive and audit verify --archives)
    "CLI_ARCHIVE_FAULT": ("[{fault}] {text}", "[{fault}] {text}"),
    "CLI_ARCHIVES_CHECKED": (
        "{chain} 记录链的 {archives} 个归档完好：{records} 条记录，至第 {last} 条。",
        "The {archives} archives of the {chain} chain are intact: {records} records, up to record {last}.",
    ),
    "CLI_ARCHIVE_PENDING": (
        "{chain} 记录链的归档 {file} 已写入，但其记录尚未从在线表删除（上次归档中断）：再次运行 govshare audit archive 即可完成。",
        "The {chain} archive {file} is written but its records are not yet removed from the live table (an "
        "archive run was interrupted): run govshare audit archive again to complete it.",
    ),
    "CLI_ARCHIVE_START": (
        "归档早于 {before} 的访问记录和办理记录，写入 {folder}。",
        "Archiving access and process records before {before} to {folder}.",
    ),
    "CLI_ARCHIVE_WRITTEN": (
        "{chain}：归档 {file} 已写入并核验，{records} 条记录（第 {first}–{last} 条）已从在线表删除。",
        "{chain}: archive {file} written and verified; {records} records ({first}-{last}) removed from the live table.",
    ),
    "CLI_ARCHIVE_RESUMED": (
        "{chain}：上次中断时已写入的归档 {file} 核验无误，{records} 条记录（第 {first}–{last} 条）已从在线表删除。",
        "{chain}: archive {file}, written by an interrupted run, verified; {records} records ({first}-{last}) "
        "removed from the live table.",
    ),
    "CLI_ARCHIVE_DONE": (
        "{chain}：本次共 {archives} 个归档，{records} 条记录。",
        "{chain}: {archives} archives, {records} records this run.",
    ),
    "AUDIT_RETENTION_TOO_SHORT": (
        "audit_retention_days 为 {days} 天，少于网络安全法要求的 {minimum} 天（六个月）日志保存期限。",
        "audit_retention_days is {days} days, less than the {minimum} days (six months) of logs the Cybersecurity "
        "Law asks for.",
    ),
    "AUDIT_ARCHIVE_TOO_RECENT": (
        "--before {before} 晚于保存期限（{days} 天）允许归档的最晚时刻 {latest}：在线表须保留这段时间的记录。",
        "--before {before} is later than the retention period ({days} days) allows ({latest}): the live tables "
        "keep those records.",
    ),
    "ARCHIVE_UNREADABLE": (
        "归档 {file} 无法读取（{detail}）：文件被改动或损坏。",
        "Archive {file} cannot be read ({detail}): it was altered or damaged.",
    ),
    "ARCHIVE_MALFORMED": ("{file} 不是有效的审计归档（{detail}）。", "{file} is not a valid audit archive ({detail})."),
    "ARCHIVE_UNSIGNED": ("归档 {file} 没有签名。", "Archive {file} is not signed."),
    "ARCHIVE_UNKNOWN_KEY": (
        "归档 {file} 由未配置的密钥 {detail} 签名（不在 audit_verify_public_key 中）。",
        "Archive {file} is signed by a key that is not configured ({detail}, not in audit_verify_public_key).",
    ),
    "ARCHIVE_SIGNATURE_INVALID": (
        "归档 {file} 的签名不符：其头部在签名后被改写。",
        "The signature of archive {file} does not match: its header was rewritten after signing.",
    ),
    "ARCHIVE_CONTENT_CHANGED": (
        "归档 {file} 的内容与其签名的头部不符（{detail}）：记录被改动、删除或插入。",
        "The content of archive {file} does not match its signed header ({detail}): records were changed, removed "
        "or inserted.",
    ),
    "ARCHIVE_MISPLACED": (
        "文件 {file} 所含的是归档 {detail}：归档被改名或调换。",
        "The file {file} holds archive {detail}: archives were renamed or swapped.",
    ),
    "ARCHIVE_MISSING": (
        "缺少归档 {file}：平台登记了它，或其后的归档接续它。",
        "Archive {file} is missing: the platform recorded it, or the archive after it follows it.",
    ),
    "ARCHIVE_LINK_BROKEN": (
        "归档 {file} 不接续前一个归档（{detail}）：归档被替换、删除或调换顺序。",
        "Archive {file} does not follow the archive before it ({detail}): archives were substituted, removed or "
        "reordered.",
    ),
    "ARCHIVE_SUBSTITUTED": (
        "归档 {file} 不是平台登记的那一个（文件摘要不同）：它被改动或替换。",
        "Archive {file} is not the one the platform recorded (another file digest): it was changed or substituted.",
    ),
    "ARCHIVE_NOT_RECORDED": (
        "平台没有登记归档 {file}：平台的归档登记被删改，或文件来自别处。",
        "The platform has no record of archive {file}: its record of archives was altered, or the file came from "
        "elsewhere.",
    ),
    "ARCHIVE_CHECKPOINT_MISMATCH": (
        "归档 {file} 与签名检查点不符（{detail}）：记录在检查点之后、归档之前被改写。",
        "Archive {file} disagrees with a signed checkpoint ({detail}): records were rewritten after the checkpoint, "
        "before they were archived.",
    ),
    "ARCHIVE_LIVE_DISCONTINUOUS": (
        "{file} 在线记录不接续最后一个归档（{detail}）：在线记录被删除或改写，或缺少最后的归档。",
        "The live {file} records do not continue the last archive ({detail}): live records were removed or "
        "rewritten, or the last archive is missing.",
    ),
    "ARCHIVE_LIVE_MISMATCH": (
        "归档 {file} 与在线表第 {first}–{last} 条记录不符：未删除任何记录。请先用 govshare audit verify 核验。",
        "Archive {file} differs from the live records {first}-{last}: nothing was removed. Run govshare audit "
        "verify first.",
    ),
    "ARCHIVE_FOLDER_MISMATCH": (
        "目录 {folder} 中没有平台登记的最后一个归档 {file}（或内容不同）：新归档须接续它，请使用原归档目录。",
        "The folder {folder} lacks the last archive the platform recorded, {file} (or holds another): a new "
        "archive follows it; use the archive folder it is in.",
    ),
    "ARCHIVE_EXISTS": (
        "归档 {file} 已存在（另一次归档同时运行？），未覆盖。",
        "Archive {file} already exists (another archive run at the same time?); it was not overwritten.",
    ),
    # Signing keys (audit/checkpoints.py); a production server refuses to start on these
    "AUDIT_SIGNING_KEY_REQUIRED": (
        "生产环境须配置审计检查点签名私钥 audit_signing_key_file（用 govshare audit keygen 生成）。",
        "Production needs a checkpoint signing key, audit_signing_key_file (govshare audit keygen writes one).",
    ),
    "AUDIT_FILE_UNDER_VAR": (
        "生产环境中 {setting}（{path}）不得位于 {var} 之下：能改写平台数据目录的人也能改写它。"
        "请放在只追加存储或另一台主机上。",
        "In production {setting} ({path}) must not be under {var}: whoever can rewrite the platform's "
        "data folder could rewrite it too. Put it on append-only storage or another host.",
    ),
    "AUDIT_SIGNING_KEY_UNREADABLE": (
        "无法读取审计检查点签名私钥 {path}：{detail}",
        "Cannot read the checkpoint signing key {path}: {detail}",
    ),
    "AUDIT_KEY_MISMATCH": (
        "签名私钥 {path} 的公钥 {key} 不在 audit_verify_public_key 中：用它签的检查点无法核验。",
        "The public half {key} of the signing key {path} is not in audit_verify_public_key: "
        "checkpoints signed with it could not be verified.",
    ),
    "AUDIT_VERIFY_KEY_REQUIRED": (
        "生产环境核验检查点须配置公钥 audit_verify_public_key（govshare audit keygen 输出的 ed25519:… 一行）。",
        "Production verifies checkpoints only with a configured audit_verify_public_key "
        "(the ed25519:… line govshare audit keygen prints).",
    ),
    "AUDIT_VERIFY_KEY_INVALID": (
        "audit_verify_public_key 中的 {value} 不是 Ed25519 公钥（应为 ed25519:… 格式）。",
        "{value} in audit_verify_public_key is not an Ed25519 public key (ed25519:…).",
    ),
    "AUDIT_KEY_EXISTS": (
        "{path} 已存在，未覆盖（换钥请写到新文件）。",
        "{path} exists and was not overwritten (write a new key to a new file).",
    ),
    # Why an item is allowed (explain)
    "PROVIDER_OWN": ("本部门自己提供的资源。", "The department's own resource."),
    "UNCONDITIONAL": ("{resource}.{item} 属于无条件共享类。", "{resource}.{item} is shared unconditionally."),
    "RELATED_DEPARTMENT": (
        "{resource}.{item} 在相关部门间无条件共享，本部门是相关部门。",
        "{resource}.{item} is shared unconditionally among related departments, yours included.",
    ),
    "GRANT": ("依据 {grant} 允许，有效期 {since} 至 {until}。", "Allowed by {grant}, valid {since} to {until}."),
    "LEGAL_BASIS": (
        "依据 {grant}（法定共享）允许，有效期 {since} 至 {until}。",
        "Allowed by {grant} (legal basis), valid {since} to {until}.",
    ),
    "DEEMED_APPROVAL": (
        "共享申请 {grant} 逾期未答复，视为同意，有效期至 {until}。",
        "Application {grant} was not answered in time and is deemed approved, until {until}.",
    ),
    # Policy rules (policies/documents.py)
    "POLICY_INVALID": (
        "策略规则有 {count} 处问题，未保存，现行规则不变。",
        "The policy rules have {count} problem(s); nothing was saved and the rules in force are unchanged.",
    ),
    "POLICY_SYNTAX": ("TOML 格式错误：{detail}", "Not valid TOML: {detail}"),
    "POLICY_UNKNOWN_FIELD": ("不认识的字段 {field}。", "Unknown field {field}."),
    "POLICY_MALFORMED": ("格式错误：{detail}", "Malformed: {detail}"),
    "POLICY_FIELD_REQUIRED": ("缺少必填字段 {field}。", "The field {field} is required."),
    "POLICY_BAD_TIME": (
        "{value} 不是时间（示例：2026-12-01T00:00:00+08:00）。",
        "{value} is not a time (e.g. 2026-12-01T00:00:00+08:00).",
    ),
    "POLICY_TIME_NO_OFFSET": (
        "时间 {value} 须带时区（如 +08:00）。",
        "The time {value} needs an offset (e.g. +08:00).",
    ),
    "POLICY_DUPLICATE_ID": ("规则编号 {id} 重复。", "The rule id {id} is used twice."),
    "POLICY_VERSION_NOT_FOUND": ("规则文件第 {version} 版不存在。", "Rules-document version {version} does not exist."),
    "POLICY_CONFLICT": (
        "规则已被他人修改：您基于第 {version} 版修改，现行为第 {current} 版。请刷新后重做。",
        "Someone changed the rules meanwhile: your change was made on version {version}, "
        "version {current} is in force. Reload and redo it.",
    ),
    "POLICY_AUTHOR_REQUIRED": ("须注明修改人。", "The author of the change is required."),
    "POLICY_RULE_NOT_FOUND": ("规则 {rule} 不存在。", "Rule {rule} does not exist."),
    "POLICY_UNCHANGED": ("与现行规则相同，未产生新版本。", "Same as the rules in force; no new version."),
    "POLICY_SAVED": ("策略规则文件第 {version} 版已生效。", "Rules-document version {version} is in force."),
    "POLICY_VALID": (
        "策略规则有效：{rules} 条允许规则，{deny} 条禁止规则。",
        "The policy rules are valid: {rules} allow rule(s), {deny} deny rule(s).",
    ),
    # Security staff accounts (admin/accounts.py) and the admin API
    "STAFF_SIGN_IN_FAILED": ("用户名或密码错误。", "Wrong user name or password."),
    "STAFF_LOCKED": (
        "连续登录失败次数过多，账户已锁定至 {until}。",
        "Too many failed sign-ins: the account is locked until {until}.",
    ),
    "STAFF_SIGN_IN_RATE_LIMITED": (
        "登录尝试过于频繁，请 {seconds} 秒后再试。",
        "Too many sign-in attempts; try again in {seconds} s.",
    ),
    "STAFF_UNAUTHENTICATED": ("请先以安全管理人员账户登录。", "Sign in with a security staff account first."),
    "CSRF_FAILED": (
        "请求缺少有效的防跨站令牌，请刷新页面后重试。",
        "The request lacks a valid CSRF token; reload the page and try again.",
    ),
    "STAFF_EXISTS": ("账户 {username} 已存在。", "The account {username} already exists."),
    "STAFF_NOT_FOUND": ("账户 {username} 不存在。", "The account {username} does not exist."),
    "STAFF_PASSWORD_WEAK": ("密码至少 {length} 个字符。", "The password needs at least {length} characters."),
    "STAFF_BAD_USERNAME": (
        "用户名只能包含字母、数字、点、横线和下划线（至多 64 个字符）。",
        "A user name is letters, digits, '.', '-' and '_' (at most 64).",
    ),
    "USAGE_BAD_DATE": ("{value} 不是 YYYY-MM-DD 格式的日期。", "{value} is not a YYYY-MM-DD date."),
    "USAGE_BAD_PERIOD": (
        "起始日期 {first} 晚于截止日期 {last}。",
        "The first day {first} is after the last day {last}.",
    ),
    "USAGE_BAD_GRANULARITY": (
        "时间粒度 {value} 无效，可选：{allowed}。",
        "Granularity {value} is not known; one of: {allowed}.",
    ),
    "PERIOD_TOO_LONG": ("统计期间不能超过 {days} 天。", "A report's period may not be longer than {days} days."),
    "USAGE_NOT_YOURS": (
        "{resource} 不是本部门的资源：提供部门只能查看本部门资源的使用情况（第二十四条）。",
        "{resource} is not your department's: a provider sees the usage of its own resources only (Art 24).",
    ),
    "USAGE_RESOURCE_UNKNOWN": ("资源目录中没有资源 {resource}。", "The catalog has no resource {resource}."),
    "USAGE_PROVIDER_UNKNOWN": ("资源目录中没有部门 {department}。", "The catalog has no department {department}."),
    "USAGE_TABLE_UNKNOWN": ("没有报表 {table}，可选：{tables}。", "There is no table {table}; one of: {tables}."),
    "REPORT_OUT_REQUIRED": ("导出 xlsx 需用 --out 指定文件。", "An xlsx export needs --out FILE."),
    "CLI_REPORT_WRITTEN": ("已写入 {path}（{tables} 张表）。", "Wrote {path} ({tables} tables)."),
    "USAGE_FORMAT_UNKNOWN": ("不支持导出格式 {format}，可选：csv、xlsx。", "No export format {format}; csv or xlsx."),
    "STAFF_OFFICE_ONLY": (
        "此处只对共享主管部门的管理人员开放；{department} 的目录编报人员只能使用目录编报页面。",
        "Only the coordinating authority's office may use this; the catalog staff of {department} use the catalog "
        "page only.",
    ),
    "CATALOG_REVIEW_OFFICE_ONLY": (
        "只有共享主管部门可以审核目录编报（同意发布或退回）。",
        "Only the coordinating authority's office reviews catalog submissions (approves or returns them).",
    ),
    "CATALOG_FILE_REQUIRED": ("请选择一个目录文件（.toml 或 .xlsx）。", "Choose a catalog file (.toml or .xlsx)."),
    "STAFF_CREATED": ("账户 {username} 已创建。", "The account {username} has been created."),
    "STAFF_UNLOCKED": ("账户 {username} 已解锁。", "The account {username} has been unlocked."),
    "STAFF_DISABLED": ("账户 {username} 已停用。", "The account {username} has been disabled."),
    "APPLICATION_KEY_NOT_STAFF": (
        "应用密钥不能用于策略管理，请以安全管理人员账户登录。",
        "Application keys cannot administer policies; sign in with a security staff account.",
    ),
    "CLI_BAD_DATE": ("{value!r} 不是 YYYY-MM-DD 日期", "{value!r} is not a YYYY-MM-DD date"),
    "CLI_BAD_PAIR": ("{option} 应写作 信息项=值，而不是 {value!r}", "{option} takes item=value, not {value!r}"),
    # The platform database's schema revision (migrations/).
    "DB_REVISION_MISMATCH": (
        "平台数据库的结构版本是 {found}，本程序需要 {expected}：请先运行 {command}（未对数据库做任何改动）。",
        "The platform database is at schema revision {found}; this program needs {expected}: "
        "run {command} first (nothing was written to the database).",
    ),
    "DB_REVISION_UNKNOWN": (
        "平台数据库的结构版本 {found} 不是本程序所知的版本（本程序为 {expected}），可能由更新的 govshare 升级过："
        "请使用与之相符的 govshare，或用 {command} 查看本程序的版本（未对数据库做任何改动）。",
        "The platform database is at schema revision {found}, which this program does not know "
        "(its own is {expected}); a newer govshare may have upgraded it: use a matching govshare, "
        "or see {command} (nothing was written to the database).",
    ),
    "DB_UNVERSIONED": (
        "平台数据库已有数据表，但没有结构版本记录（由引入迁移之前的版本建成）；本程序需要 {expected}："
        "请运行 {command}，核对表结构后接管（未对数据库做任何改动）。",
        "The platform database has tables but no schema revision (made before migrations); this "
        "program needs {expected}: run {command} to check its tables and adopt it (nothing was "
        "written to the database).",
    ),
    "DB_NOT_CREATED": (
        "平台数据库是空的：生产模式下不自动建表，请先运行 {command}。",
        "The platform database is empty: production does not create it on its own; run {command} first.",
    ),
    "DB_SCHEMA_UNKNOWN": (
        "平台数据库的数据表与基线版本 {baseline} 不符，无法接管（{differences}）；未做任何改动。",
        "The platform database's tables differ from the baseline revision {baseline} and cannot be "
        "adopted ({differences}); nothing was changed.",
    ),
    "DB_UPGRADE_STEP": ("已升级：{source} → {target}（{doc}）", "Upgraded: {source} -> {target} ({doc})"),
    "DB_CREATED": (
        "已在空数据库上建立结构版本 {revision}（数据表、只追加保护、初始行）。",
        "Created the schema at revision {revision} on the empty database (tables, append-only guards, first rows).",
    ),
    "DB_ADOPTED": ("数据表与基线版本一致，已标记为 {revision}。", "The tables match the baseline; stamped {revision}."),
    "DB_AT_REVISION": (
        "平台数据库的结构版本：{revision}{note}",
        "The platform database is at schema revision {revision}{note}",
    ),
    "DB_NOTE_HEAD": ("（最新）", " (head)"),
    "DB_NOTE_BEHIND": (
        "（本程序为 {head}，请运行 govshare db upgrade）",
        " (this program: {head}; run govshare db upgrade)",
    ),
    "DB_NOTE_EMPTY": ("（空数据库）", " (empty database)"),
    "DB_NOTE_UNVERSIONED": (
        "（有数据表但无版本记录，请运行 govshare db upgrade）",
        " (tables without a revision; run govshare db upgrade)",
    ),
    "DB_NOTHING_TO_DO": ("已是 {revision}，无需升级。", "Already at {revision}; nothing to do."),
    "WORKERS_INVALID": (
        "工作进程数（workers，即 --workers 或 GOVSHARE_WORKERS）须至少为 1，而不是 {workers}。",
        "The number of worker processes (workers: --workers or GOVSHARE_WORKERS) must be at least 1, not {workers}.",
    ),
    "WORKERS_NEED_SHARED_DATABASE": (
        "多个工作进程须共用一个平台数据库，而内存中的 SQLite 数据库（{database}）只属于一个进程：请配置文件中的 "
        "SQLite 或 PostgreSQL 数据库，或使用 --workers 1。",
        "Several worker processes must share one platform database, and an in-memory SQLite database ({database}) "
        "belongs to one process: configure a SQLite file or PostgreSQL, or use --workers 1.",
    ),
    "SETTING_VARIABLE_UNKNOWN": (
        "环境变量 {variable} 不是已知的配置项。",
        "The environment variable {variable} is not a known setting.",
    ),
    "SETTING_VARIABLE_UNKNOWN_SUGGEST": (
        "环境变量 {variable} 不是已知的配置项，是否应为 {suggestion}？",
        "The environment variable {variable} is not a known setting; did you mean {suggestion}?",
    ),
    "DEMO_IN_PRODUCTION": (
        "生产模式下不生成演示世界（演示密钥、授权与目录会写入平台数据库 {database}）；未做任何改动。",
        "No demo world in production (its keys, grants and catalog would go into the platform "
        "database {database}); nothing was changed.",
    ),
    # Consumers' feedback (oversight/feedback.py) and the coordinator's evaluation (oversight/evaluation.py)
    "FEEDBACK_GRANT_NOT_FOUND": (
        "本部门没有编号为 {grant} 的共享授权或已批准的共享申请。",
        "This department holds no grant or approved share application {grant}.",
    ),
    "FEEDBACK_GRANT_NOT_STARTED": (
        "共享授权 {grant} 自 {start} 起生效，生效前无使用效果可反馈。",
        "Grant {grant} is in force from {start}; there is no effect to report before then.",
    ),
    "FEEDBACK_PERIOD_INVALID": (
        "反馈期间 {period} 无效：须为授权生效期间内且不晚于本月的月份（{rule}）。",
        "The period {period} is not valid: a month the grant was in force in, not after this month ({rule}).",
    ),
    "FEEDBACK_COUNT_INVALID": (
        "{field} 须为 0 至 {limit} 之间的整数，而不是 {value}。",
        "{field} must be a whole number from 0 to {limit}, not {value}.",
    ),
    "FEEDBACK_NOTE_TOO_LONG": (
        "说明最多 {limit} 个字符（现为 {length} 个）。",
        "The note holds at most {limit} characters ({length} given).",
    ),
    "FEEDBACK_NOTE_INVALID": ("说明含有控制字符。", "The note holds control characters."),
    "FEEDBACK_NOTE_HAS_SUBJECT": (
        "说明中不得含有公民身份号码或统一社会信用代码（说明对提供部门与共享主管部门可见）。",
        "The note must not hold an ID number or a credit code (the provider and the coordinator read it).",
    ),
    "EVALUATION_ROLE_REQUIRED": (
        "部门评价只对共享主管部门（coordinator 角色）与审计（auditor 角色）开放。",
        "The evaluation of departments is for the coordinating authority (coordinator role) and auditors only.",
    ),
    "EVALUATION_WEIGHT_UNKNOWN": (
        "评价权重中的 {key} 不是评价指标；可用：{known}。",
        "{key} in the evaluation weights is not a figure; known: {known}.",
    ),
    "EVALUATION_WEIGHT_INVALID": (
        "评价权重 {key} 须为 -{limit} 至 {limit} 之间的数，而不是 {value}。",
        "The evaluation weight {key} must be a number from -{limit} to {limit}, not {value}.",
    ),
    "EVALUATION_WEIGHTS_UNREADABLE": (
        "无法读取评价权重文件 {path}：{detail}",
        "The evaluation weights file {path} cannot be read: {detail}",
    ),
    "EVALUATION_PERIOD_INVALID": (
        "评价期间无效：结束日 {end} 早于开始日 {start}。",
        "The evaluation period is not valid: it ends ({end}) before it starts ({start}).",
    ),
    "EVALUATION_PERIOD_TOO_LONG": ("评价期间最长 {days} 天。", "An evaluation period spans at most {days} days."),
    "CLI_EVALUATION_WRITTEN": (
        "已写出 {path}：{departments} 个部门的评价。",
        "Wrote {path}: {departments} departments evaluated.",
    ),
    "EVALUATION_CHART_UNKNOWN": ("没有名为 {chart} 的评价图表。", "There is no evaluation chart {chart}."),
    "EVALUATION_FIGURE_UNKNOWN": (
        "{figure} 不是评价指标；可用：{known}。",
        "{figure} is not an evaluation figure; known: {known}.",
    ),
    "EVALUATION_FORMAT_UNKNOWN": (
        "不支持导出格式 {format}：可用 csv、xlsx。",
        "The export format {format} is not offered: csv or xlsx.",
    ),
    "EVALUATION_DAY_INVALID": (
        "{name} 须为日期（YYYY-MM-DD），而不是 {value}。",
        "{name} must be a day (YYYY-MM-DD), not {value}.",
    ),
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


class Phrase:
    """A message used as a parameter of another (``detail=Phrase("REQUEST_QUERY_EMPTY")``): rendered in the language
    of the message it is put into, so that a refusal raised before the language is known still reads in it."""

    __slots__ = ("code", "params")

    def __init__(self, code: str, **params: object) -> None:
        self.code, self.params = code, params

    def __repr__(self) -> str:
        return f"Phrase({self.code!r})"


def message(code: str, lang: str = "zh-CN", **params: object) -> str:
    params = {
        name: message(value.code, lang, **value.params) if isinstance(value, Phrase) else value
        for name, value in params.items()
    }
    zh, en = MESSAGES.get(code, (code, code))
    template = en if lang == "en" else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return template
