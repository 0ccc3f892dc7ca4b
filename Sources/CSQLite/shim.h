#ifndef OUTBOX_CSQLITE_SHIM_H
#define OUTBOX_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
