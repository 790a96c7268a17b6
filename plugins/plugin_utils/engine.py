# Copyright: lync2fa developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The lync2fa engine for this collection's action plugins, or a clean failure that says how to install it.

Every module of lync2fa.twofactor decides on the controller with the engine of the lync2fa Python
package. Without it, each task fails with the exact command that installs it into the Python that
runs Ansible, from this collection's own directory (the collection carries the package's source).
"""

from __future__ import annotations

import os
import sys

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# <collections path>/ansible_collections/lync2fa/twofactor
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def engine_source():
    """What to install: the wheel the collection carries (engine/), else, in a checkout, the checkout."""
    engine = os.path.join(COLLECTION_ROOT, "engine")
    wheels = (
        sorted(f for f in os.listdir(engine) if f.startswith("lync2fa-") and f.endswith(".whl"))
        if os.path.isdir(engine)
        else []
    )
    if wheels:
        return os.path.join(engine, wheels[-1])
    return COLLECTION_ROOT


def install_message(error):
    return (
        "install lync2fa: %s -m pip install '%s' (the lync2fa Python package, the engine this collection "
        "runs on the controller, is missing or broken: %s; see the collection's README)"
        % (sys.executable, engine_source(), error)
    )


try:
    from lync2fa.ansible_bridge import EngineAction  # noqa: F401  pylint: disable=unused-import
except ImportError as exc:  # the engine is not installed in the Python that runs Ansible
    ENGINE_ERROR = exc

    class EngineAction(ActionBase):  # type: ignore[no-redef]
        """Stands in for the engine's action: every task fails with the install command."""

        TASK = ""
        _requires_connection = False

        def run(self, tmp=None, task_vars=None):
            raise AnsibleActionFail(install_message(ENGINE_ERROR))
