"""Every sentence the console says to a person, and its Simplified Chinese.

The key is the English template; ``{name}`` fields are filled in after
translation. Imports nothing of the project.
"""

NO_CLUSTER = "No IPFS Cluster is set (--cluster-api or IPFSMASTER_CLUSTER_API)."
NOT_FOUND = "Not found."

MESSAGES_ZH = {
    NOT_FOUND: "未找到。",
    "This address does not accept {method}. Use {allowed}.": "此地址不接受 {method} 请求，请使用 {allowed}。",
    "The task id is missing.": "缺少任务编号。",
    "The task id must be a positive whole number.": "任务编号必须是正整数。",
    "There is no task {id}.": "不存在编号为 {id} 的任务。",
    "A {what} is already running (task {id}).": "已有一个{what}任务正在进行（任务 {id}）。",
    "A {what} cannot start while a {other} runs (task {id}); try again when it has ended.":
        "{other}任务正在进行（任务 {id}），{what}无法开始；请在它结束后重试。",
    "Send the CIDs as JSON (a list named cids), as text/plain with one CID a line, or as a multipart/form-data"
    " field named file.": "请以 JSON（名为 cids 的列表）、每行一个 CID 的 text/plain，或 multipart/form-data 的 file 字段发送 CID。",
    "The request body is not valid JSON.": "请求体不是有效的 JSON。",
    "Send the CIDs to unpin as JSON, in a list named cids.": "请以 JSON 格式在名为 cids 的列表中发送要取消固定的 CID。",
    "cids must be a list of CIDs, each as text.": "cids 必须是 CID 列表，每项为文本。",
    "name must be text of at most 255 characters.": "name 必须是不超过 255 个字符的文本。",
    "Too many CIDs at once: at most {limit}.": "一次提交的 CID 过多：最多 {limit} 个。",
    "The list holds no CID.": "列表中没有 CID。",
    "No line holds a valid CID: 1 line is not a CID (line {line}).": "没有任何一行包含有效的 CID：第 {line} 行不是 CID。",
    "No line holds a valid CID: {invalid} lines are not CIDs (the first is line {line}).":
        "没有任何一行包含有效的 CID：{invalid} 行不是 CID（第一处在第 {line} 行）。",
    "The IPFS node cannot be reached: {reason}": "无法连接 IPFS 节点：{reason}",
    "Task {id} has already finished ({status}).": "任务 {id} 已经结束（{status}）。",
    "Only failed or cancelled tasks, or tasks with failed items, can be retried; task {id} is {status}.":
        "只有失败或已取消的任务，或有失败项目的任务，可以重试；任务 {id} 当前为 {status}。",
    "Task {id} has already been retried: task {retry}.": "任务 {id} 已经重试过：任务 {retry}。",
    "{name} must be a whole number from {low} to {high}.": "{name} 必须是 {low} 到 {high} 之间的整数。",
    "Unknown status {value!r}.": "未知的状态 {value!r}。",
    "Unknown task type {value!r}.": "未知的任务类型 {value!r}。",
    "Unknown sort order {value!r}.": "未知的排序方式 {value!r}。",
    "Unknown export format {value!r}: use csv or jsonl.": "未知的导出格式 {value!r}：请用 csv 或 jsonl。",
    "Unknown export format {value!r}: tasks export as csv.": "未知的导出格式 {value!r}：任务只能导出为 csv。",
    "since must be a time in ISO 8601 form, such as 2026-12-01T08:00:00Z (UTC unless it says otherwise); {value!r}"
    " is not one.": "since 必须是 ISO 8601 格式的时间，例如 2026-12-01T08:00:00Z（未注明时区时按 UTC）；{value!r} 不是。",
    "The request body is too large.": "请求体过大。",
    "Cross-site requests are not allowed.": "不允许跨站请求。",
    "This console answers only at its own address, such as http://127.0.0.1, not at {host}.":
        "此控制台只在它自己的地址（例如 http://127.0.0.1）上应答，不在 {host} 上应答。",
    "The Content-Length header is not a valid size.": "Content-Length 请求头不是有效的大小。",
    "A request cannot have both Content-Length and Transfer-Encoding.":
        "请求不能同时带有 Content-Length 和 Transfer-Encoding。",
    "Send the body with Content-Length or Transfer-Encoding: chunked, not {encoding}.":
        "请用 Content-Length 或 Transfer-Encoding: chunked 发送请求体，而不是 {encoding}。",
    "A request body sent in chunks may be at most {limit} MiB; send a larger one with Content-Length.":
        "分块发送的请求体最多 {limit} MiB；更大的请求体请带 Content-Length 发送。",
    "The request body is malformed or was cut short.": "请求体格式错误或不完整。",
    "The request line is too long.": "请求行过长。",
    "The request headers are too large.": "请求头过大。",
    "The request is malformed.": "请求格式错误。",
    "Log in first: this console needs a password.": "请先登录：此控制台需要密码。",
    "Wrong password.": "密码错误。",
    "Too many failed logins. Try again in {seconds} seconds.": "登录失败次数过多，请在 {seconds} 秒后重试。",
    "The upload is malformed or was cut short.": "上传内容格式错误或不完整。",
    "Send the file as multipart/form-data in a field named file.": "请以 multipart/form-data 格式在 file 字段中发送文件。",
    "Say how large the upload is (Content-Length).": "请提供上传大小（Content-Length）。",
    "The file is larger than the limit of {limit} bytes.": "文件超过了 {limit} 字节的上限。",
    "The field {name} is too long.": "字段 {name} 过长。",
    "A folder upload holds at most {limit} files.": "一次文件夹上传最多包含 {limit} 个文件。",
    "An upload cannot be retried: its file is removed when the task ends. Upload it again.":
        "上传任务无法重试：任务结束时文件已被删除。请重新上传。",
    "The worker could not be started.": "无法启动后台进程。",
    "A CAR import cannot be retried: its file is removed when the task ends. Import it again.":
        "CAR 导入任务无法重试：任务结束时文件已被删除。请重新导入。",
    "Send one CAR file at a time.": "请一次只发送一个 CAR 文件。",
    "This file is not a CAR: {reason}.": "这个文件不是 CAR：{reason}。",
    "{value!r} is not a CID.": "{value!r} 不是 CID。",
    "The node does not have {cid} (it exports only what it has).": "节点上没有 {cid}（只能导出节点已有的内容）。",
    "The IPFS node could not export {cid}: {reason}": "IPFS 节点无法导出 {cid}：{reason}",
    "it is empty": "文件是空的",
    "its header is cut short": "文件头不完整",
    "it does not begin with a header length": "文件开头不是文件头的长度",
    "its header length is impossible": "文件头的长度不成立",
    "its header is not dag-cbor": "文件头不是 dag-cbor",
    "its header is not a dag-cbor map": "文件头不是 dag-cbor 映射",
    "the CARv2 header is cut short": "CARv2 文件头不完整",
    "its CAR version is neither 1 nor 2": "CAR 版本既不是 1 也不是 2",
    "its header has no list of roots": "文件头中没有根 CID 列表",
    "A replication factor needs an IPFS Cluster (--cluster-api).": "副本数需要 IPFS Cluster（--cluster-api）。",
    "{name} must be -1 (every peer) or a whole number from 1 to 1000.":
        "{name} 必须是 -1（所有节点）或 1 到 1000 之间的整数。",
    "replication_min cannot be more than replication_max.": "replication_min 不能大于 replication_max。",
    NO_CLUSTER: "未设置 IPFS Cluster（--cluster-api 或 IPFSMASTER_CLUSTER_API）。",
    "Something went wrong on the server; the details are in its log.": "服务器出错，详情见服务器日志。",
    "The database is busy with a long write (such as a sync saving the catalogue). Try again in a moment.":
        "数据库正忙于一次较长的写入（例如同步正在保存目录），请稍后重试。",
    "The body must be a JSON object: a Pin with cid, and optionally name, origins and meta.":
        "请求体必须是 JSON 对象：含 cid，可选 name、origins 和 meta 的固定对象。",
    "Unknown field {field}: a Pin has only cid, name, origins and meta.":
        "未知字段 {field}：固定对象只有 cid、name、origins 和 meta。",
    "cid must be a valid CID, as text.": "cid 必须是文本形式的有效 CID。",
    "origins must be a list of at most 20 multiaddrs, each as text starting with /.":
        "origins 必须是最多 20 个 multiaddr 的列表，每项为以 / 开头的文本。",
    "origins must not name a multiaddr twice.": "origins 中的 multiaddr 不能重复。",
    "{field} must be a JSON object of at most 1000 entries, each value text.":
        "{field} 必须是最多 1000 项的 JSON 对象，每个值为文本。",
    "{field} must be a time in RFC 3339 form, such as 2020-07-27T17:32:28.276Z.":
        "{field} 必须是 RFC 3339 格式的时间，例如 2020-07-27T17:32:28.276Z。",
    "Unknown query parameter {name}.": "未知的查询参数 {name}。",
    "cid takes 1 to 10 CIDs, separated by commas.": "cid 接受 1 到 10 个以逗号分隔的 CID。",
    "{cid} is not a valid CID.": "{cid} 不是有效的 CID。",
    "match must be exact, iexact, partial or ipartial.": "match 必须是 exact、iexact、partial 或 ipartial。",
    "status takes {statuses}, separated by commas.": "status 接受以逗号分隔的 {statuses}。",
    "limit must be a whole number from 1 to 1000.": "limit 必须是 1 到 1000 之间的整数。",
    "meta must be a JSON object, each value text.": "meta 必须是 JSON 对象，每个值为文本。",
    "Not found: the pinning service API has {paths}.": "未找到：固定服务 API 只有 {paths}。",
    "Send a pinning token as Authorization: Bearer TOKEN (made with: ipfsmaster.py token add NAME).":
        "请以 Authorization: Bearer TOKEN 发送固定令牌（用 ipfsmaster.py token add NAME 生成）。",
    "This pinning token is not valid (it may have been revoked).": "此固定令牌无效（可能已被吊销）。",
    "Send the Pin as application/json.": "请以 application/json 发送固定对象。",
    "There is no pin request {id}.": "不存在固定请求 {id}。",
    "A token's name is 1 to 64 characters, without control characters.": "令牌名称为 1 到 64 个字符，不含控制字符。",
    "There is a token named {name} already.": "已有名为 {name} 的令牌。",
    "There is no token named {name}.": "不存在名为 {name} 的令牌。",
    "The pin request {id} has ended: only a queued or pinning one can be cancelled.":
        "固定请求 {id} 已结束：只能取消排队中或固定中的请求。",
    "The pin request {id} has not failed: only a failed one can be retried.":
        "固定请求 {id} 没有失败：只能重试失败的请求。",
    "The request id is missing.": "缺少请求编号。",
}

# Schedules.
MESSAGES_ZH.update({
    "{value!r} is not a duration: write a number and a unit, such as 90s, 15m, 6h or 1d.":
        "{value!r} 不是时长：请写数字加单位，例如 90s、15m、6h 或 1d。",
    "{value!r} is not a time of day: write HH:MM, from 00:00 to 23:59.":
        "{value!r} 不是一天中的时间：请写 HH:MM，从 00:00 到 23:59。",
    "{value!r} is not a day of the week: write mon, tue, wed, thu, fri, sat or sun.":
        "{value!r} 不是星期几：请写 mon、tue、wed、thu、fri、sat 或 sun。",
    "There is no schedule {id}.": "不存在编号为 {id} 的计划。",
    "A schedule repeats at most once a minute and at least once a year, not every {value}.":
        "计划最多每分钟运行一次、至少每年运行一次，不能是每 {value}。",
    "Say when it runs with one of every (such as 6h), daily (03:00) or weekly (mon 03:00).":
        "请用 every（例如 6h）、daily（03:00）或 weekly（mon 03:00）中的一个说明何时运行。",
    "weekly takes a day and a time, such as mon 03:00.": "weekly 需要星期几和时间，例如 mon 03:00。",
    "{value!r} cannot be scheduled: use one of {types}.": "{value!r} 不能按计划运行：请使用 {types} 之一。",
    "params must be a JSON object.": "params 必须是 JSON 对象。",
    "A {type} schedule takes no option {name!r}.": "{type} 计划没有选项 {name!r}。",
    "{name} must be text.": "{name} 必须是文本。",
    "name must be an IPNS name or a DNSLink domain, such as /ipns/example.org.":
        "name 必须是 IPNS 名称或 DNSLink 域名，例如 /ipns/example.org。",
    "The repository is at {percent}% of its StorageMax, below {above}%: nothing to collect yet.":
        "仓库已用 StorageMax 的 {percent}%，低于 {above}%：暂不需要回收。",
    "The schedule id must be a positive whole number.": "计划编号必须是正整数。",
    "enabled must be true or false.": "enabled 必须是 true 或 false。",
    "Schedule {id} deleted.": "计划 {id} 已删除。",
    "A schedule's task type cannot be changed: add a new schedule instead.": "计划的任务类型不能更改：请另外添加一个计划。",
})

# Alerts.
MESSAGES_ZH.update({
    "The IPFS node at {api} cannot be reached: {reason}": "无法连接位于 {api} 的 IPFS 节点：{reason}",
    "Cluster peer {peer} is down: {error}": "集群节点 {peer} 已离线：{error}",
    "{count} pins are in error on a cluster peer.": "有 {count} 个固定在集群节点上出错。",
    "{count} pins are on fewer cluster peers than they should be.": "有 {count} 个固定的集群副本数不足。",
    "The repository uses {percent}% of its StorageMax ({size} of {most} bytes), past the {level} at {limit}%.":
        "仓库已用 StorageMax 的 {percent}%（{most} 字节中的 {size} 字节），超过了 {limit}% 的{level}。",
    "The last {what} failed (task {id}): {error}": "最近一次{what}任务失败（任务 {id}）：{error}",
    "Schedule {id} ({what}, {spec}) failed its last {runs} runs.": "计划 {id}（{what}，{spec}）最近 {runs} 次运行都失败了。",
    "This upload ({size} bytes) would take the repository past its StorageMax: it holds {repo_size} of"
    " {storage_max} bytes. Collect garbage, or raise Datastore.StorageMax.":
        "这次上传（{size} 字节）会让仓库超过 StorageMax：仓库已用 {storage_max} 字节中的 {repo_size} 字节。"
        "请回收垃圾，或调高 Datastore.StorageMax。",
    "Pinning this adds {size} bytes the node does not hold yet, which would take the repository past its"
    " StorageMax: it holds {repo_size} of {storage_max} bytes. Collect garbage, or raise Datastore.StorageMax.":
        "这次固定会添加节点尚未保存的 {size} 字节，会让仓库超过 StorageMax：仓库已用 {storage_max} 字节中的"
        " {repo_size} 字节。请回收垃圾，或调高 Datastore.StorageMax。",
    "A schedule takes no field {name!r}: use {fields}.": "计划没有字段 {name!r}：请使用 {fields}。",
})

LANGUAGES = ("en", "zh")


def translate(template, lang, **values):
    """The sentence in ``lang``; a value may itself be {"en": ..., "zh": ...}."""
    if lang == "zh":
        template = MESSAGES_ZH.get(template, template)
    values = {name: value.get(lang, value["en"]) if isinstance(value, dict) else value
              for name, value in values.items()}
    return template.format(**values)
