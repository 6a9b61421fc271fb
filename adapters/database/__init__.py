"""Our own SQL: where the data lives (`url`), one object per dialect that says how each thing is
done there (`postgres`, `sqlite`, both behind `base.Database`), every table and its migrations
(`schema`), and the cross-process coordination built on the database (`coordination`)."""
