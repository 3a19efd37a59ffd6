"""Patrol wand (巡更棒) CSV exports, read with the built-in `patrol_wand_csv` mapping."""
