"""Label keys and tracks: names Prometheus queries and the chart depend on."""

from modelrollout.api import labels


def test_keys_share_the_prefix() -> None:
    for key in (labels.NAME, labels.TRACK, labels.REVISION, labels.COMMAND, labels.FINALIZER):
        assert key.startswith(labels.PREFIX)
    assert labels.RPS == "e2e.modelrollout.io/rps"


def test_tracks_are_lower_case_label_values() -> None:
    assert [track.value for track in labels.Track] == ["stable", "canary", "preview", "shadow"]
    assert f"{labels.Track.CANARY}" == "canary"


def test_selector() -> None:
    assert labels.selector("scorer", labels.Track.STABLE) == {
        "modelrollout.io/name": "scorer",
        "modelrollout.io/track": "stable",
    }
