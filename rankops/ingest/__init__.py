"""Bring your own logs: a real impression/click log into the lake's raw layer.

A YAML mapping names, for each column of the raw schema (docs/schema.md), the
column of your file that holds it. Required event columns must be mapped and
present; optional ones may be missing (filled with neutral values and reported).
Every row that violates the schema (including a CSV row with the wrong number of
fields) is written, with a ``reason`` column, to the ``raw/quarantine/<table>``
dataset of the run: counted, never silently dropped. A file that cannot be read
at all stops the run, naming the file, before anything is written.

Valid events are stored per hour (``raw/events/dt=/hour=``) and listings per
creation day (``raw/items/dt=``), exactly as ``rankops generate`` writes them, so
the feature jobs run on them unchanged. Ingest *merges*: every partition it touches
is rewritten as its stored rows plus the new ones and committed atomically (the
lake's manifests), so running it again, on the same log or on later ones, never
loses or duplicates a stored row:

* an event is identified by (request_id, item_id, position); an exact repeat of a
  stored event (or of an earlier row of the same run) is counted as a duplicate and
  kept once, a row with the same key but other values is quarantined;
* a listing is identified by item_id, once in the whole lake: a listing already
  stored keeps its row unless the side table gives it again, and then the side
  table's non-empty values replace the stored ones (its creation time only ever
  moves earlier); a listing given twice in one run keeps its first row, the other
  is quarantined;
* a listing the log shows but neither the side table nor the lake knows gets a
  row created when it was first shown; a side-table listing with no creation time
  that was never shown is quarantined.
"""

from rankops.ingest.mapping import Mapping, TableMapping, load_mapping
from rankops.ingest.merge import IngestReport, ingest

__all__ = ["IngestReport", "Mapping", "TableMapping", "ingest", "load_mapping"]
