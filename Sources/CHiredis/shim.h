#ifndef OUTBOX_CHIREDIS_SHIM_H
#define OUTBOX_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
