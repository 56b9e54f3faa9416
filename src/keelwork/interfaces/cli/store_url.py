"""Which store a ``--project`` command talks to: the CLI side of the one rule.

The rule itself lives in :mod:`keelwork.service.projects` (``storage_url``): the
``storage_url`` setting (``$KEELWORK_STORAGE_URL``), else ``storage.url`` of ``DIR/keel.yaml``,
else the embedded default ``sqlite:///DIR/.keel/keel.db``. The options live in
:mod:`keelwork.interfaces.cli.output`, re-exported here for the commands that still import
them from this module.
"""

from __future__ import annotations

from keelwork.interfaces.cli.output import JSON_OPTION, PROJECT_OPTION
from keelwork.spec.settings import env_name

STORAGE_URL_ENV = env_name("storage_url")

__all__ = ["JSON_OPTION", "PROJECT_OPTION", "STORAGE_URL_ENV"]
