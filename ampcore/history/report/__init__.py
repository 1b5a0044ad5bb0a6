"""``ampcore report``: charts of a saved history (``build``), their data (``charts``), drawing
(``drawing``), the HTML page (``page``) and progress bars (``progress``)."""
