"""Storage guardrails: the repository against its ``Datastore.StorageMax``
(Kubo does not stop at it: it is where its own garbage collection aims),
with a warning and an alarm level (``--repo-warn-percent``, 80, and
``--repo-alarm-percent``, 95), and the warning before an upload, or a pin
of a few CIDs, that would take the repository past it."""

import concurrent.futures

from console import node
from console.framing import IPFSError
from console.messages import translate
from console.rpc import IPFSClient

CROSSING = ("This upload ({size} bytes) would take the repository past its StorageMax: it holds {repo_size} of"
            " {storage_max} bytes. Collect garbage, or raise Datastore.StorageMax.")
PIN_CROSSING = ("Pinning this adds {size} bytes the node does not hold yet, which would take the repository past its"
                " StorageMax: it holds {repo_size} of {storage_max} bytes. Collect garbage, or raise"
                " Datastore.StorageMax.")
# A pin of at most this many CIDs is sized before it starts; a longer list is not.
MAX_SIZED_PINS = 20
# How long the node may take to size them (all at once): a CID whose root
# block it lacks waits for the network, and then counts as unknown.
SIZE_TIMEOUT_SECONDS = 3


def storage_percent(overview):
    """The repository's size as a percentage of StorageMax (one decimal), or None if unknown."""
    size, most = overview.get("repo_size"), overview.get("storage_max")
    if not isinstance(size, int) or not isinstance(most, int) or most <= 0:
        return None
    return round(size * 100.0 / most, 1)


def storage_state(settings, overview):
    """What the node overview adds about storage: the percentage used, its
    level (ok, warn, alarm; None if unknown) and the two limits."""
    percent = storage_percent(overview)
    level = None
    if percent is not None:
        level = ("alarm" if percent >= settings.repo_alarm_percent
                 else "warn" if percent >= settings.repo_warn_percent else "ok")
    return {"storage_percent": percent, "storage_level": level, "repo_warn_percent": settings.repo_warn_percent,
            "repo_alarm_percent": settings.repo_alarm_percent}


def repo_room(settings):
    """(repo_size, storage_max) as the node last said them (asked now if it
    never was), or None when unknown."""
    overview, _ = node.last_overview(settings)
    if overview is None:
        try:
            overview = node.node_overview(settings)
        except IPFSError:
            return None
    repo_size, most = overview.get("repo_size"), overview.get("storage_max")
    if not isinstance(repo_size, int) or not isinstance(most, int) or most <= 0:
        return None
    return repo_size, most


def crossing_warning(settings, size, lang="en", template=CROSSING):
    """The sentence that warns that adding ``size`` bytes would take the
    repository past StorageMax, or None (also when the node cannot say).
    The node's last overview serves (the server looks every sample_seconds):
    a node slow to answer never holds up the upload's answer."""
    room = repo_room(settings)
    if room is None or size <= 0 or room[0] + size <= room[1]:
        return None
    return translate(template, lang, size=size, repo_size=room[0], storage_max=room[1])


def missing_size(settings, cid):
    """How many bytes pinning ``cid`` would add to the node: its DAG's
    CumulativeSize less what the node holds of it already (``files/stat``
    with ``with-local``); None when the node cannot say within
    SIZE_TIMEOUT_SECONDS (it lacks the root block, the DAG is not UnixFS)."""
    client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=SIZE_TIMEOUT_SECONDS + 2.0, attempts=1)
    try:
        stat = client.call("files/stat", [("arg", "/ipfs/" + cid), ("with-local", "true"),
                                          ("timeout", "%ds" % SIZE_TIMEOUT_SECONDS)])
    except IPFSError:
        return None
    finally:
        client.close()
    total, local = stat.get("CumulativeSize"), stat.get("SizeLocal")
    if isinstance(total, bool) or isinstance(local, bool) or not isinstance(total, int) or not isinstance(local, int):
        return None
    return max(0, total - local)


def pin_warning(settings, cids, lang="en"):
    """The sentence that warns that pinning ``cids`` would take the
    repository past StorageMax, or None: also for more than MAX_SIZED_PINS
    CIDs (not sized), and when the node cannot size any of them (those it
    cannot size count for nothing)."""
    cids = list(dict.fromkeys(cids))
    if not cids or len(cids) > MAX_SIZED_PINS or repo_room(settings) is None:
        return None
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cids)) as pool:
        sizes = list(pool.map(lambda cid: missing_size(settings, cid), cids))
    return crossing_warning(settings, sum(size for size in sizes if size), lang, PIN_CROSSING)
