"""Registry downloads through a local mirror: the exact official weights, the cache used offline, and
every way a download goes wrong (half-sent, reset, corrupted cache, no network, unknown name,
unwritable cache, Google Drive entries)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from maskdino import build_model, from_pretrained, get_config, load_official_checkpoint, load_weights
from maskdino.checkpoints import DownloadError, WeightsError, find_entry, resolve_weights
from maskdino.checkpoints.zoo import ENTRIES
from maskdino.cli.main import main as cli_main
from tests.reference import official_checkpoint
from tests.test_predictor import ASTRONAUT, demo_config, official_layout

R50 = ENTRIES["maskdino-r50-coco-instance-hid1024"]  # the smallest R50 release (43.8M parameters)
PANOPTIC = ENTRIES["maskdino-r50-coco-panoptic"]  # its release name serves small demo weights below


def demo_weights(tmp_path: Path, seed: int = 0) -> tuple[dict[str, torch.Tensor], Path]:
    """Seeded demo weights, and the same saved as an official detectron2 checkpoint."""
    torch.manual_seed(seed)
    state = build_model(demo_config()).state_dict()
    path = tmp_path / f"demo_official_{seed}.pth"
    torch.save({"model": official_layout(state)}, path)
    return state, path


def assert_same_state(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in state)


def cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_from_pretrained_through_a_mirror_is_the_official_loader_and_works_offline(
    tmp_path, server, private_cache
):
    release = tmp_path / R50.file_name
    torch.save({"model": official_checkpoint("r50_ins_hid1024_3s"), "iteration": 368749}, release)
    server.files[R50.file_name] = release
    model = from_pretrained(R50.file_name)  # the official release file name works as a name
    assert server.requests == [R50.file_name]
    assert cache_files(private_cache) == [R50.file_name]  # no temporary file left behind
    assert (private_cache / R50.file_name).read_bytes() == release.read_bytes()
    assert not model.training and model.config == get_config("r50_ins_hid1024_3s")
    got = {k: v.clone() for k, v in model.state_dict().items()}
    # the official loader, strict over every tensor of the same model, must give exactly the same
    expected = load_official_checkpoint(model, release).state_dict()
    assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    del model, got
    server.stop()
    offline = from_pretrained("maskdino-r50-coco-instance-hid1024")  # the short name, from the cache
    assert_same_state(offline, expected)
    assert offline.weights_source == "maskdino-r50-coco-instance-hid1024"


def test_half_sent_and_reset_downloads_leave_nothing_and_the_next_call_downloads_again(
    tmp_path, server, private_cache
):
    state, path = demo_weights(tmp_path)
    server.files[PANOPTIC.file_name] = path
    size = path.stat().st_size
    server.modes[PANOPTIC.file_name] = "half"
    with pytest.raises(DownloadError, match=rf"stopped after \d+ of {size} bytes|failed midway"):
        load_weights(build_model(demo_config()), PANOPTIC.name)
    assert cache_files(private_cache) == []
    server.modes[PANOPTIC.file_name] = "reset"
    with pytest.raises(DownloadError, match=rf"{server.url}{PANOPTIC.file_name}.*run the command again"):
        load_weights(build_model(demo_config()), PANOPTIC.name)
    assert cache_files(private_cache) == []
    server.modes[PANOPTIC.file_name] = "full"
    assert_same_state(load_weights(build_model(demo_config()), PANOPTIC.name), state)
    assert server.requests == [PANOPTIC.file_name] * 3
    assert cache_files(private_cache) == [PANOPTIC.file_name]


def test_a_corrupted_cached_file_is_downloaded_again_once(tmp_path, server, private_cache, caplog):
    state, path = demo_weights(tmp_path)
    server.files[PANOPTIC.file_name] = path
    cached = private_cache / PANOPTIC.file_name
    private_cache.mkdir()
    cached.write_bytes(path.read_bytes()[:1000])  # e.g. a copy that stopped halfway
    model = load_weights(build_model(demo_config()), PANOPTIC.file_name)
    assert_same_state(model, state)
    assert "unreadable" in caplog.text and server.requests == [PANOPTIC.file_name]
    assert cached.read_bytes() == path.read_bytes()
    # a mirror serving a broken copy: one more download, then a clear error
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint" * 100)
    server.files[PANOPTIC.file_name] = broken
    cached.write_bytes(b"garbage")
    with pytest.raises(DownloadError, match="(?s)still not a readable checkpoint.*MASKDINO_MIRROR"):
        load_weights(build_model(demo_config()), PANOPTIC.name)
    assert server.requests == [PANOPTIC.file_name] * 2


def test_no_network_names_the_url_and_the_ways_around_it(maskdino_cli, tmp_path):
    with pytest.raises(DownloadError) as err:
        from_pretrained(R50.name)
    message = str(err.value)
    url = os.environ["MASKDINO_MIRROR"] + R50.file_name
    assert f"cannot reach {url}" in message
    assert "--weights /path/" in message and "MASKDINO_MIRROR=<base url>" in message
    code, err_text = maskdino_cli("predict", ASTRONAUT, "--weights", R50.name, "--output", tmp_path)
    assert code == 2 and err_text.startswith("maskdino predict: error: cannot reach " + url)
    assert "Traceback" not in err_text


def test_unknown_names_suggest_the_closest_registry_names():
    with pytest.raises(FileNotFoundError, match="Did you mean: maskdino-r50-coco-instance,"):
        from_pretrained("maskdino-r50-coco-instanse")
    with pytest.raises(FileNotFoundError, match=r"weights file not found: nope\.pth"):
        resolve_weights("nope.pth")


def test_an_unwritable_cache_is_a_clear_error_and_a_filled_one_still_works(tmp_path, server, monkeypatch):
    state, path = demo_weights(tmp_path)
    server.files[PANOPTIC.file_name] = path
    blocked = tmp_path / "a_file"
    blocked.write_text("")
    monkeypatch.setenv("MASKDINO_HOME", str(blocked / "cache"))  # cannot be created, even by root
    with pytest.raises(DownloadError, match=r"cannot write to the weights cache .*a_file.*Set MASKDINO_HOME"):
        load_weights(build_model(demo_config()), PANOPTIC.name)
    filled = tmp_path / "shared"
    filled.mkdir()
    (filled / PANOPTIC.file_name).write_bytes(path.read_bytes())
    filled.chmod(0o555)
    monkeypatch.setenv("MASKDINO_HOME", str(filled))
    try:
        assert_same_state(load_weights(build_model(demo_config()), PANOPTIC.name), state)
        if os.geteuid() != 0:  # root writes through permissions
            with pytest.raises(DownloadError, match="cannot write to the weights cache"):
                resolve_weights(R50.name)
    finally:
        filled.chmod(0o755)
    assert server.requests == []


def test_google_drive_entries_explain_the_manual_step_unless_a_mirror_has_them(
    tmp_path, server, monkeypatch, private_cache
):
    entry = find_entry("dimaskdino-r50-coco-instance-12ep")
    server.files[entry.file_name] = demo_weights(tmp_path)[1]
    monkeypatch.delenv("MASKDINO_MIRROR")
    with pytest.raises(DownloadError) as err:
        resolve_weights(entry.name)
    assert "drive.google.com/file/d/1oQociMQSt_jmQtH3pm92i6zat8Gt83Oh" in str(err.value)
    assert str(private_cache / "dimaskdino_r50_4scale_bs16_12ep.pth") in str(err.value)
    assert server.requests == []
    monkeypatch.setenv("MASKDINO_MIRROR", server.url.rstrip("/"))  # with or without the trailing slash
    assert resolve_weights(entry.name) == private_cache / entry.file_name


def test_backbone_entries_resolve_to_their_file_but_are_not_whole_models(
    tmp_path, server, private_cache, monkeypatch
):
    payload = tmp_path / "R-50.pkl"
    payload.write_bytes(b"backbone bytes")
    server.files["R-50.pkl"] = payload
    assert resolve_weights("resnet50-imagenet") == private_cache / "R-50.pkl"
    assert (private_cache / "R-50.pkl").read_bytes() == b"backbone bytes"
    with pytest.raises(WeightsError, match="backbone weights.*--backbone-weights"):
        load_weights(build_model(demo_config()), "resnet50_imagenet")
    with pytest.raises(WeightsError, match="not a whole swinl_ins_5s model"):
        from_pretrained("swin-large-in22k-384")
    assert server.requests == ["R-50.pkl"]
    monkeypatch.setenv("MASKDINO_MIRROR", tmp_path.as_uri())  # a folder as the mirror
    (tmp_path / "mae_pretrain_vit_base.pth").write_bytes(b"mae bytes")
    assert resolve_weights("mae-vit-base").read_bytes() == b"mae bytes"


@pytest.fixture
def maskdino_cli(capsys):
    def run(*args) -> tuple[int, str]:
        code = cli_main([str(a) for a in args])
        return code, capsys.readouterr().err

    return run
