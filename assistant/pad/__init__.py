"""The writing pad: the page `assistant serve` shows at `/` (static/), its editor bundle (editor/) and its documents."""
