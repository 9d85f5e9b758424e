"""Spreadsheets in and out, one path each way for every importer and every export.

* :mod:`.reader` reads the first sheet of .xlsx/.xlsm/.xlsb/.xls/.ods (python-calamine) or a
  CSV (UTF-8 or GBK) into rows of values, merged ranges filled, after :mod:`.guard` has bounded
  the file (bytes unzipped, rows, columns, cells, entity declarations, time).
* :mod:`.layout` finds the header row among title rows, joins two-row headers, and recognises
  footer rows (合计 …) and 同上; the ledger and key-person imports share it.
* :mod:`.cells` makes user text safe for a spreadsheet (no formula, no control characters);
  :mod:`.writer` writes every XLSX export with XlsxWriter in constant-memory mode.
"""

from .guard import Limits, SheetError

__all__ = ["Limits", "SheetError"]
