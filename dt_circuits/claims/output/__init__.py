"""What people and programs read of a run: the JSON and terminal table, the HTML report, README verdict tables."""
