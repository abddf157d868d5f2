"""explorer.app (tabs, launch options) and launch.py (command line, safety defaults)."""
import subprocess
import sys
from pathlib import Path

import pytest

import launch
from explorer.app import TABS, launch_options, tab_modules

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tab_package(tmp_path, monkeypatch):
    """A throwaway package of tab modules: one good, one broken, one without build()."""
    pkg = tmp_path / "fake_tabs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "good.py").write_text("TITLE = 'Good'\ndef build(ctx):\n    pass\n")
    (pkg / "broken.py").write_text("import a_module_that_does_not_exist\n")
    (pkg / "lazy.py").write_text("TITLE = 'Lazy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_tabs"
    for name in [m for m in sys.modules if m.startswith("fake_tabs")]:
        del sys.modules[name]


def test_absent_tabs_are_skipped_and_order_is_kept(tab_package):
    found = tab_modules(["missing", "good"], package=tab_package)
    assert [m.__name__ for m in found] == ["fake_tabs.good"]


def test_a_broken_tab_is_never_silently_skipped(tab_package):
    with pytest.raises(ModuleNotFoundError, match="a_module_that_does_not_exist"):
        tab_modules(["good", "broken"], package=tab_package)
    with pytest.raises(TypeError, match="must define build"):
        tab_modules(["lazy"], package=tab_package)


def test_the_real_tabs_start_with_forward():
    assert TABS[0] == "forward"
    assert tab_modules()[0].TITLE == "Forward process"


def test_the_built_app_has_its_tabs_and_context(app):
    titles = [b.label for b in app.blocks.values() if type(b).__name__ == "Tab" and b.elem_id
              and b.elem_id.startswith("tab-")]
    assert titles[0] == "Forward process"
    assert app.ctx.images and "astronaut" in app.ctx.images


def test_launch_options_are_safe():
    opts = launch_options()
    assert opts["enable_monitoring"] is False
    assert opts["run_history"] is False  # no record of every call piling up in the browser
    assert 0 < opts["max_file_size"] <= 50 * 1024**2


def test_the_running_app_refuses_monitoring_and_files_outside_its_cache(app_url):
    import httpx

    assert httpx.get(app_url + "monitoring").status_code in (403, 404)
    assert httpx.get(app_url + "gradio_api/file=/etc/passwd").status_code == 403
    assert httpx.get(app_url + f"gradio_api/file={ROOT / 'launch.py'}").status_code == 403


def test_command_line_defaults_are_local_only():
    args = launch.parse_args([])
    assert (args.host, args.port, args.device, args.share, args.checkpoints) == (
        "127.0.0.1", 7860, "auto", False, "runs")
    args = launch.parse_args(["--host", "0.0.0.0", "--port", "8000", "--device", "cpu", "--share",
                              "--checkpoints", "mine", "--threads", "3"])
    assert (args.host, args.port, args.device, args.share, args.checkpoints, args.threads) == (
        "0.0.0.0", 8000, "cpu", True, "mine", 3)


@pytest.mark.parametrize("argv", [["--port", "0"], ["--device", "tpu"], ["--threads", "0"]])
def test_command_line_rejects_bad_values(argv, capsys):
    with pytest.raises(SystemExit):
        launch.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_loopback_detection():
    assert launch.is_loopback("127.0.0.1") and launch.is_loopback("localhost") and launch.is_loopback("::1")
    assert not launch.is_loopback("0.0.0.0") and not launch.is_loopback("192.168.1.5")
    assert not launch.is_loopback("example.org")


def test_threads_option_is_the_shared_one(capsys):
    assert launch.parse_args([]).threads is None  # core.threads' default: half the cores
    assert launch.parse_args(["--threads", "2"]).threads == 2
    with pytest.raises(SystemExit):
        launch.parse_args(["--threads", "0"])
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err


def test_help_runs_without_starting_anything():
    out = subprocess.run([sys.executable, "launch.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--share" in out.stdout and "127.0.0.1" in out.stdout
