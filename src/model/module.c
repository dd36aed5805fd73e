/* The table bcdr-model.so exports (model/module.h). Everything else in
 * the module is hidden: its calls stay inside it. */
#include "model/module.h"

__attribute__((visibility("default"))) extern const struct model_ops bcdr_model_ops;

#define MODEL_OPS_ENTRY(type, name, params, args, kind) .name = name,

const struct model_ops bcdr_model_ops = {
	.head = { BCDR_VERSION, sizeof(struct model_ops) },
	MODEL_OPS(MODEL_OPS_ENTRY)
};
