"""Serving a class: who may log in, where checkpoints go, and the limits, checked before anything slow.

Standard library only: `launch.py` uses this before importing torch or gradio, so a bad option is
refused at once. The limits themselves are applied to the running app by `explorer.sessions`
(live sessions) and `explorer.rate_limits` (expensive calls per client).
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

AUTH_ENV = "DIFFUSION_EXPLORER_AUTH"
STUDENT_AUTH_ENV = "DIFFUSION_EXPLORER_STUDENT_AUTH"


def is_loopback(host: str) -> bool:
    """True when `host` reaches this machine only (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_login(text: str, what: str = "--auth") -> tuple[str, str]:
    """`"user:password"` as (user, password); the password may itself contain ':'.

    ValueError saying what is wrong and what is allowed for anything else.
    """
    user, sep, password = (text or "").partition(":")
    user = user.strip()
    if not sep or not user or not password:
        raise ValueError(f"{what} must be USER:PASSWORD with a non-empty user name and password, got "
                         f"{'an empty value' if not text else repr(_masked(text))}")
    if any(c.isspace() for c in user):
        raise ValueError(f"{what}: the user name must not contain spaces, got {user!r}")
    return user, password


def _masked(text: str) -> str:
    """The value with its password part hidden, for error messages."""
    user, sep, _ = text.partition(":")
    return f"{user}:***" if sep else text


@dataclass(frozen=True)
class Logins:
    """Who may log in: the teacher (everything) and, optionally, students (the quiz only)."""

    teacher: tuple[str, str] | None = None
    student: tuple[str, str] | None = None

    def __post_init__(self):
        if self.student and not self.teacher:
            raise ValueError("--student-auth needs --auth too: without a teacher login everyone could do "
                             "everything anyway")
        if self.student and self.teacher and self.student[0] == self.teacher[0]:
            raise ValueError(f"--student-auth and --auth must use different user names, both are "
                             f"{self.teacher[0]!r}")

    @property
    def enabled(self) -> bool:
        return self.teacher is not None

    def check(self, user: str, password: str) -> bool:
        """Gradio's `auth=` callable: True for a known user with its password."""
        return any(login == (user, password) for login in (self.teacher, self.student) if login)

    def is_student(self, user: str | None) -> bool:
        return self.student is not None and user == self.student[0]


def logins_from(auth: str | None, student_auth: str | None, environ=os.environ) -> Logins:
    """The logins from the command line, else from the environment (DIFFUSION_EXPLORER_AUTH,
    DIFFUSION_EXPLORER_STUDENT_AUTH; these keep the password out of the process list)."""
    auth = auth if auth is not None else environ.get(AUTH_ENV) or None
    student_auth = student_auth if student_auth is not None else environ.get(STUDENT_AUTH_ENV) or None
    return Logins(teacher=parse_login(auth, f"--auth ({AUTH_ENV})") if auth is not None else None,
                  student=parse_login(student_auth, f"--student-auth ({STUDENT_AUTH_ENV})")
                  if student_auth is not None else None)


def prepare_runs_dir(path: str | Path) -> tuple[Path, bool]:
    """The checkpoint folder, made if missing: (path, whether it was created now).

    ValueError when it cannot be used: a file is in the way, or it cannot be made or written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--checkpoints {path}: a file is there, not a folder; give a folder "
                         "(it is created when missing)")
    created = False
    if not path.exists():
        try:
            path.mkdir(parents=True)
        except OSError as e:  # a file on the way (NotADirectoryError), no permission, read-only disk
            raise ValueError(f"--checkpoints {path}: cannot create the folder ({e.strerror or e}); "
                             "give a folder you can write to") from None
        created = True
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"--checkpoints {path}: the folder is not writable; give a folder you can write to")
    return path, created


@dataclass(frozen=True)
class Limits:
    """How much one app serves at once.

    max_sessions: live sessions (browser tabs or API clients) at most; a new one beyond it is refused.
    idle_minutes: a session unused for this long is dropped (its state is forgotten).
    per_minute: calls a minute per client for each group of expensive endpoints (`rate_limits.GROUPS`).
    """

    max_sessions: int = 200
    idle_minutes: float = 20.0
    per_minute: tuple[tuple[str, int], ...] = (("training", 6), ("sampling", 30), ("evaluation", 6),
                                               ("export", 10))

    def __post_init__(self):
        if not 1 <= self.max_sessions <= 10_000:
            raise ValueError(f"--max-sessions must be between 1 and 10000, got {self.max_sessions}")
        if not 0 < self.idle_minutes <= 24 * 60:
            raise ValueError(f"--session-idle-minutes must be above 0 and at most 1440, got {self.idle_minutes}")
        for group, n in self.per_minute:
            if n < 1:
                raise ValueError(f"the rate limit for {group} must be at least 1 a minute, got {n}")
