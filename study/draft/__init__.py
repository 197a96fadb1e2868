"""The paper draft (`make paper`), built from the study's own outputs."""
