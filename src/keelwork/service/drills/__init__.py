"""The drills of ``keel check``, each run on a scratch copy of the project so that the user's
project and store are never touched:

- :mod:`~keelwork.service.drills.rollback`: a copy of the champion deployed as a canary and
  rolled back under load (zero failed requests, the canary gone in under a second);
- :mod:`~keelwork.service.drills.kill`: ``keel serve`` killed with SIGKILL under load (zero
  acknowledged predictions lost);
- :mod:`~keelwork.service.drills.backup`: the store backed up and restored into a scratch
  store (same rows, the audit chain verifies, the same registry);
- :mod:`~keelwork.service.drills.pii_scan`: the raw bytes of the stores scanned for personal
  data keel.yaml says is redacted.

:mod:`~keelwork.service.drills.scratch` makes the copies, :mod:`~keelwork.service.drills.live`
serves one and drives load at it.
"""
