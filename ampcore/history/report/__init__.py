"""``ampcore report``: charts of a saved history (``build``), their data (``charts``), drawing
(``drawing``), the verdict, failing list and table rows (``summary``), value formatting
(``units``), the HTML page (``page``, ``template``) and progress bars (``progress``)."""
