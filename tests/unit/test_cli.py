"""The runc-style command line parser (no root needed)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from pyoci.cmdline import parse_flags
from pyoci.errors import PyociError
from pyoci.main import GLOBAL, main, parse_command_line


def parse(argv):
    a = SimpleNamespace(command=None)
    parse_command_line(a, parse_flags(GLOBAL, argv, a, stop_at_word=True))
    return a


def test_containerd_style_call():
    a = parse(["--root", "/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b",
               "--pid-file", "/p", "--console-socket=/s", "c1"])
    assert (a.root, a.log, a.log_format, a.command) == ("/r", "/l.json", "json", "create")
    assert (a.bundle, a.pid_file, a.console_socket, a.id) == ("/b", "/p", "/s", "c1")
    assert a.preserve_fds == "0" and a.no_pivot is False


def test_podman_style_and_go_single_dash_flags():
    a = parse(["--log-format=json", "--log", "/l", "kill", "--all", "c1", "15"])
    assert (a.all, a.id, a.signal) == (True, "c1", "15")
    a = parse(["run", "-bundle", "/b", "-d", "c2"])
    assert (a.bundle, a.detach, a.id) == ("/b", True, "c2")


def test_defaults_and_optional_signal():
    a = parse(["kill", "c1"])
    assert a.signal is None and a.root == "" and a.log_format == "text"
    a = parse(["delete", "-f", "c1"])
    assert a.force is True


@pytest.mark.parametrize("euid, xdg, root", [(0, "/run/user/0", "/run/pyoci"), (1000, "/x", "/x/pyoci"),
                                             (1000, "", "/run/user/1000/pyoci")])
def test_default_root_is_runcs(monkeypatch, euid, xdg, root):
    from pyoci.state import default_root

    monkeypatch.setattr("posix.geteuid", lambda: euid)
    monkeypatch.setenv("XDG_RUNTIME_DIR", xdg)
    assert default_root() == root


@pytest.mark.parametrize("argv, message", [
    (["create", "--nope", "c1"], "unknown flag --nope"),
    (["create"], "usage: pyoci create"),
    (["state", "a", "b"], "usage: pyoci state"),
    (["frobnicate"], 'unknown command "frobnicate"'),
    (["create", "--bundle"], "flag --bundle needs a value"),
])
def test_bad_command_lines(argv, message):
    with pytest.raises(PyociError, match=message):
        parse(argv)


def test_main_reports_bad_usage_on_one_line(capsys):
    assert main(["--root", "/tmp/x", "state"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pyoci: usage: pyoci state")


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("create", "start", "state", "kill", "delete", "run", "list", "spec", "features"):
        assert f"  {name}" in out
    assert main(["create", "--help"]) == 0
    assert "--console-socket" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "spec: 1.3.0" in capsys.readouterr().out


@pytest.mark.parametrize("text, units, value", [("64m", True, 64 << 20), ("1g", True, 1 << 30), ("512", True, 512),
                                                ("-1", True, -1), ("100", False, 100), ("0-1", None, "0-1")])
def test_update_sizes(text, units, value):
    from pyoci.cli import parse_size

    assert parse_size("memory", text, units) == value


@pytest.mark.parametrize("text, units", [("lots", True), ("10m", False), ("1x", True)])
def test_bad_update_sizes(text, units):
    from pyoci.cli import parse_size

    with pytest.raises(PyociError, match="not a"):
        parse_size("memory", text, units)


def test_kill_takes_every_signal_name_and_number_as_runc_does():
    import signal

    from pyoci.container import parse_signal

    for sig in signal.Signals:
        short = sig.name[3:]
        assert {parse_signal(sig.name), parse_signal(short), parse_signal(short.lower()),
                parse_signal(str(sig.value))} == {sig.value}
    assert parse_signal("0") == 0
    for bad in ("NOPE", "SIG_DFL", "DFL", "SIG_IGN", "SIG", "", "65", "-9", "9x", "SIGNSIG"):
        with pytest.raises(PyociError, match="invalid signal"):
            parse_signal(bad)
