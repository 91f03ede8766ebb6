"""Storage guardrails: the repository against its ``Datastore.StorageMax``
(Kubo does not stop at it: it is where its own garbage collection aims),
with a warning and an alarm level (``--repo-warn-percent``, 80, and
``--repo-alarm-percent``, 95), and the warning before an upload that would
take the repository past it."""

from console import node
from console.framing import IPFSError
from console.messages import translate

CROSSING = ("This upload ({size} bytes) would take the repository past its StorageMax: it holds {repo_size} of"
            " {storage_max} bytes. Collect garbage, or raise Datastore.StorageMax.")


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


def crossing_warning(settings, size, lang="en"):
    """The sentence that warns that adding ``size`` bytes would take the
    repository past StorageMax, or None (also when the node cannot say).
    The node's last overview serves (the server looks every sample_seconds):
    a node slow to answer never holds up the upload's answer."""
    overview, _ = node.last_overview(settings)
    if overview is None:
        try:
            overview = node.node_overview(settings)
        except IPFSError:
            return None
    repo_size, most = overview.get("repo_size"), overview.get("storage_max")
    if not isinstance(repo_size, int) or not isinstance(most, int) or most <= 0 or repo_size + size <= most:
        return None
    return translate(CROSSING, lang, size=size, repo_size=repo_size, storage_max=most)
