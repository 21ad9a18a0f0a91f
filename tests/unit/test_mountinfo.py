"""mountinfo paths decode as the unicode_escape codec decodes them, without importing it for plain ones."""
from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from pyoci.linux.mountinfo import decode_path


@given(st.binary(max_size=12).filter(lambda b: b"\\" not in b) | st.sampled_from([b"/a\\040b", b"/x\\134y"]))
def test_the_codecs_verdict(field):
    assert decode_path(field) == field.decode("unicode_escape")


def test_plain_paths_need_no_codec():
    code = ("import sys\nfrom pyoci.linux.mountinfo import mount_points\nmount_points()\n"
            "assert 'encodings.unicode_escape' not in sys.modules or b'\\\\' in open('/proc/self/mountinfo', 'rb').read()")
    assert subprocess.run([sys.executable, "-I", "-c", code]).returncode == 0
