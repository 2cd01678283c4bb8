// CNearest: the C core of swift-nearest.
//
// An implementation detail of the Swift module `Nearest`, with no stable API of its own.
// Every symbol is prefixed `nn_`; handles are opaque; every call that can fail returns an
// `nn_status` and hands results back through out-parameters.
#ifndef CNEAREST_H
#define CNEAREST_H

#include "nn_base.h"
#include "nn_kernels.h"
#include "nn_pool.h"
#include "nn_flat.h"
#include "nn_hnsw.h"

#endif
