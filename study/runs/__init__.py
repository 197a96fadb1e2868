"""The run machinery: `make reproduce` under content keys, its history, and did a re-run reproduce?"""
