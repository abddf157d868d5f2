"""launch.py's serving options: logins (flags and environment), session limits, the checkpoint folder."""
import subprocess
import sys
from pathlib import Path

import pytest

import launch
from explorer import serving

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_login_in_the_environment(monkeypatch):
    monkeypatch.delenv(serving.AUTH_ENV, raising=False)
    monkeypatch.delenv(serving.STUDENT_AUTH_ENV, raising=False)


def test_no_login_by_default():
    args = launch.parse_args([])
    assert args.logins == serving.Logins() and not args.logins.enabled
    assert (args.limits.max_sessions, args.limits.idle_minutes) == (200, 20.0)


def test_auth_flag_gives_the_teacher_login_and_a_password_may_hold_colons():
    logins = launch.parse_args(["--auth", "ada:s3cret:with:colons"]).logins
    assert logins.teacher == ("ada", "s3cret:with:colons") and logins.student is None
    assert logins.check("ada", "s3cret:with:colons")
    assert not logins.check("ada", "s3cret") and not logins.check("bob", "s3cret:with:colons")


def test_logins_come_from_the_environment_when_no_flag_is_given(monkeypatch):
    monkeypatch.setenv(serving.AUTH_ENV, "teach:pw1")
    monkeypatch.setenv(serving.STUDENT_AUTH_ENV, "class:pw2")
    logins = launch.parse_args([]).logins
    assert (logins.teacher, logins.student) == (("teach", "pw1"), ("class", "pw2"))
    assert logins.is_student("class") and not logins.is_student("teach") and not logins.is_student(None)
    # a flag wins over the environment
    assert launch.parse_args(["--auth", "other:pw3"]).logins.teacher == ("other", "pw3")


@pytest.mark.parametrize("argv, message", [
    (["--auth", "nopassword"], "--auth (DIFFUSION_EXPLORER_AUTH) must be USER:PASSWORD"),
    (["--auth", ":pw"], "must be USER:PASSWORD with a non-empty user name and password, got ':***'"),
    (["--auth", "ada:"], "got 'ada:***'"),
    (["--auth", "a b:pw"], "the user name must not contain spaces, got 'a b'"),
    (["--student-auth", "kids:pw"], "--student-auth needs --auth too"),
    (["--auth", "ada:x", "--student-auth", "ada:y"], "must use different user names, both are 'ada'"),
    (["--max-sessions", "0"], "--max-sessions must be between 1 and 10000, got 0"),
    (["--session-idle-minutes", "0"], "--session-idle-minutes must be above 0 and at most 1440, got 0.0"),
])
def test_bad_serving_options_are_refused_with_what_is_allowed(argv, message, capsys):
    with pytest.raises(SystemExit):
        launch.parse_args(argv)
    err = capsys.readouterr().err
    assert message in err
    assert "pw" not in err.replace("USER:PASSWORD", "")  # a password never echoes back


def test_a_bad_environment_login_is_refused_too(monkeypatch, capsys):
    monkeypatch.setenv(serving.AUTH_ENV, "justaname")
    with pytest.raises(SystemExit):
        launch.parse_args([])
    assert "DIFFUSION_EXPLORER_AUTH" in capsys.readouterr().err


def test_a_missing_checkpoint_folder_is_created_and_said_so(tmp_path, capsys):
    target = tmp_path / "a" / "b"
    path = launch.checkpoints_dir(launch.parse_args(["--checkpoints", str(target)]))
    assert path == target and target.is_dir()
    assert f"Created the checkpoint folder {target}" in capsys.readouterr().err
    assert launch.checkpoints_dir(launch.parse_args(["--checkpoints", str(target)])) == target
    assert "Created" not in capsys.readouterr().err  # an existing folder is used quietly


def test_a_checkpoint_folder_that_cannot_be_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="a file is there, not a folder"):
        serving.prepare_runs_dir(blocker)
    with pytest.raises(ValueError, match=r"cannot create the folder \(Not a directory\)"):
        serving.prepare_runs_dir(blocker / "inside")
    assert not (blocker / "inside").exists()


def test_a_bad_checkpoint_folder_stops_launch_before_gradio_is_imported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = ("import sys, launch\n"
            "try:\n"
            f"    launch.main(['--checkpoints', {str(blocker / 'runs')!r}])\n"
            "finally:\n"
            "    print('gradio imported:', 'gradio' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert f"error: --checkpoints {blocker / 'runs'}: cannot create the folder (Not a directory)" in out.stderr
    assert "gradio imported: False" in out.stdout


def test_loopback_is_one_function():
    from explorer.lecture import join

    assert launch.is_loopback is serving.is_loopback and join.is_loopback is serving.is_loopback
    assert serving.is_loopback("127.0.0.2") and not serving.is_loopback("10.0.0.1")


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError, match="rate limit for export must be at least 1 a minute, got 0"):
        serving.Limits(per_minute=(("export", 0),))


def test_launch_serves_behind_its_login_with_its_session_cap(tmp_path):
    """launch.py end to end: the login from the environment, the cap from the flag, the folder created."""
    import os

    import httpx
    from gradio_client import Client

    from conftest import free_port

    port = free_port()
    runs = tmp_path / "new" / "runs"
    env = dict(os.environ, **{serving.AUTH_ENV: "teach:pw-1", "GRADIO_ANALYTICS_ENABLED": "False"})
    server = subprocess.Popen([sys.executable, "launch.py", "--port", str(port), "--max-sessions", "2",
                               "--checkpoints", str(runs), "--threads", "1"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in server.stdout:  # the app says where it runs once it answers
            lines.append(line)
            if "Diffusion Explorer is running at" in line:
                break
        assert server.poll() is None, "".join(lines)
        assert f"Created the checkpoint folder {runs}" in "".join(lines) and runs.is_dir()
        url = f"http://127.0.0.1:{port}/"
        assert httpx.get(url + "config").status_code == 401  # nothing without the login
        assert httpx.get(url + "de-feed/any-token?after=0").status_code == 401  # nor the Reverse player's frames
        assert httpx.get(url + "de-train-version").status_code == 401  # nor whether a run has moved
        with httpx.Client() as logged_in:
            assert logged_in.post(url + "login", data={"username": "teach", "password": "pw-1"}).status_code == 200
            assert logged_in.get(url + "de-feed/any-token?after=0").status_code == 410  # in, and no such run
            assert logged_in.get(url + "de-train-version").status_code == 200
        first = Client(url, verbose=False, auth=("teach", "pw-1"))
        second = Client(url, verbose=False, auth=("teach", "pw-1"))
        third = Client(url, verbose=False, auth=("teach", "pw-1"))
        assert first.predict(api_name="/train_status")["status"] == "idle"
        assert second.predict(api_name="/train_status")["status"] == "idle"
        with pytest.raises(Exception, match=r"The class is full \(2 people are using this app\)"):
            third.predict(api_name="/train_status")
        assert first.predict(api_name="/train_status")["status"] == "idle"
    finally:
        server.terminate()
        server.wait(60)
