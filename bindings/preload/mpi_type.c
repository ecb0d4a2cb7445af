/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Classifies an MPI datatype by its type signature, not its handle. This
 * matters for agreement between ranks: MPI lets one rank pass MPI_FLOAT
 * where another passes a contiguous type of floats (the signatures match),
 * so "is it a float all-to-all?" must give the same answer for both, or one
 * rank would vote (a collective) while the other did not. Signatures must
 * match between ranks, so the kind computed here does too (for non-zero
 * counts).
 */
#include <stdlib.h>

#include "bindings/preload/mpi_ops.h"

#define KIND_MAX_DEPTH 8   /* deeper derived types count as OTHER */

static pl_kind_t kind_of(MPI_Datatype type, int depth);

/* Kind of a derived type from its constituent types (MPI_Type_get_contents
 * returns new handles for derived constituents; those are freed here). */
static pl_kind_t contents_kind(MPI_Datatype type, int ni, int na, int nd, int depth)
{
    int *ints = malloc(sizeof(int) * (size_t)(ni ? ni : 1));
    MPI_Aint *aints = malloc(sizeof(MPI_Aint) * (size_t)(na ? na : 1));
    MPI_Datatype *types = malloc(sizeof(MPI_Datatype) * (size_t)(nd ? nd : 1));
    pl_kind_t kind = PL_KIND_OTHER;
    if (ints != NULL && aints != NULL && types != NULL &&
        PMPI_Type_get_contents(type, ni, na, nd, ints, aints, types) == MPI_SUCCESS) {
        kind = nd > 0 ? PL_KIND_FP32_DERIVED : PL_KIND_OTHER;
        for (int i = 0; i < nd; i++) {
            if (kind_of(types[i], depth + 1) == PL_KIND_OTHER)
                kind = PL_KIND_OTHER;
            int ni2, na2, nd2, comb;
            if (PMPI_Type_get_envelope(types[i], &ni2, &na2, &nd2, &comb) == MPI_SUCCESS &&
                comb != MPI_COMBINER_NAMED)
                PMPI_Type_free(&types[i]);
        }
    }
    free(ints);
    free(aints);
    free(types);
    return kind;
}

static pl_kind_t kind_of(MPI_Datatype type, int depth)
{
    int ni, na, nd, combiner;
    if (type == MPI_DATATYPE_NULL || depth > KIND_MAX_DEPTH)
        return PL_KIND_OTHER;
    if (PMPI_Type_get_envelope(type, &ni, &na, &nd, &combiner) != MPI_SUCCESS)
        return PL_KIND_OTHER;
    if (combiner == MPI_COMBINER_NAMED)
        return type == MPI_FLOAT ? PL_KIND_FP32 : PL_KIND_OTHER;
    /* Resized and struct types can carry gaps or mixed members; a struct
     * of floats still has a float signature, so only the members count. */
    return contents_kind(type, ni, na, nd, depth);
}

pl_kind_t pl_mpi_kind(MPI_Datatype type)
{
    pl_kind_t k = kind_of(type, 0);
    return k;
}
