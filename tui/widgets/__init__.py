"""The dashboard's widgets, one small file each."""
