"""vm32.ui: presentation.  The lower layers return data (rows, counters, results); this
package renders them with rich for a terminal, a file or a pipe.  Nothing below the CLI
imports it.

    tables    page and frame tables, run statistics, the demos' reports (80 columns, legends)
    live      status lines and `vm32 demo`'s live picture
    terminal  the status line and the output streams that keep clear of it
    demo      `vm32 demo`: the showcase run, live view and report
    paging    `vm32 paging demo`: banner, progress bar, table and summary
    trace     `vm32 trace sim` / `sweep`: results as a table, CSV, JSON, FINALSTATS lines,
              the --explain lines, a sweep's progress bar

For example, a process's page table and the frame table of its machine:

    import rich
    from vm32.ui import frame_table_view, page_table_view

    rich.print(page_table_view(p.page_table(), title=f"page table of process {p.pid}"))
    rich.print(frame_table_view(m.frame_table()))
"""

from vm32.ui.tables import frame_table_view, page_table_view  # noqa: F401
