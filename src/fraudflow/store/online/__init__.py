"""The online store: a shared, ordered log of transactions and fraud labels, and the answered
requests, behind one interface.

    interface.py    ``OnlineStore``: the contract every backend keeps
    connect.py      ``open_store(url)``: the backend a URL names
    memory.py       ``MemoryStore``: in process, for tests and single-process replays
    sqlite.py       ``SQLiteStore``: one WAL file, shared by the processes of one host
    redis.py        ``RedisStore``: shared by service processes on several hosts
    codec.py        the stored answer's codec: the served feature vector and the request
    materialize.py  loading the store from the lake's last days

``tests/store/test_online_contract.py`` runs the one contract on all three backends.
"""
