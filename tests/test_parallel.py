"""The one executor (neurodepth_lib._parallel): its pool workers die with the process that started them, so
a killed run (kill -9, SIGTERM) leaves nothing simulating or idling behind and a rerun races nobody."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from neurodepth_lib import _parallel

SCRIPT = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from neurodepth_lib import _parallel

    def task(t):
        Path(t["dir"], f"worker-{os.getpid()}").write_text("")
        time.sleep(120)  # a long shard: still running when the parent is killed
        return t

    if __name__ == "__main__":
        tasks = [{"dir": sys.argv[1], "i": i} for i in range(6)]  # more tasks than workers: some are queued
        _parallel.run_tasks(task, tasks, workers=2, client=None, on_done=lambda r: None, name_of=str)
''')


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return "\nState:\tZ" not in state  # a zombie has exited (its new parent reaps it)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_pool_workers_die_with_a_killed_parent(tmp_path, sig):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)])
    workers = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
            workers = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
            time.sleep(0.1)
        assert len(workers) == 2, "the pool never started its workers"
        parent.send_signal(sig)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = [pid for pid in workers if _alive(pid)]
        assert survivors == [], f"workers {survivors} outlived their parent"
        time.sleep(1.0)  # no queued task started after the parent died either
        assert len(list(tmp_path.glob("worker-*"))) == 2
    finally:
        for pid in [parent.pid, *workers]:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        parent.wait(timeout=10)


def test_die_with_parent_exits_at_once_when_the_parent_is_already_gone():
    code = ("import os\nfrom neurodepth_lib import _parallel\n_parallel.die_with_parent(os.getppid() + 999999)\n"
            "print('still here')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 70 and "still here" not in out.stdout


def test_run_tasks_in_process_and_on_the_pool_give_every_result():
    got = []
    assert _parallel.run_tasks(dict, [{"a": 1}], workers=0, client=None, on_done=got.append, name_of=str) == \
        "in-process"
    assert got == [{"a": 1}]


def test_a_guarded_script_edited_while_it_runs_is_not_refused(tmp_path):
    """The guard reads the main script's source to find the calling line; once the script is edited (every line
    moved) the source no longer describes the running code, and a guarded call must not be refused for it."""
    (tmp_path / "study.py").write_text(textwrap.dedent("""
        from pathlib import Path

        from neurodepth_lib import _parallel


        def main():
            me = Path(__file__)
            me.write_text("\\n" * 40 + me.read_text())  # an edit made while the study runs
            _parallel.check_spawn_safe(2)
            print("not refused")


        if __name__ == "__main__":
            main()
        """))
    done = subprocess.run([sys.executable, "study.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "not refused" in done.stdout, done.stderr[-1500:]
