"""The claim itself: ``Claim`` and ``Check``. Claim files import them, with every measure, from
:mod:`dt_circuits.claim`."""
