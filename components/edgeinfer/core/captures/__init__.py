"""The data loop: frames worth labelling (uncertain, disagreed with the cloud, alerts, a small random sample) kept
in a bounded on-disk queue and uploaded when connected, each with a SageMaker Ground Truth input-manifest line.

* ``config.py``: the ``captures:`` section (where uploads go is a device-local setting).
* ``queue.py``: the on-disk queue (size cap, oldest-first eviction, counted).
* ``manifest.py``: the Ground Truth manifest line of a capture.
* ``uploader.py``: the upload thread and the store port; S3 and Azure Blob stores live in ``edgeinfer.hybrid``.
"""
