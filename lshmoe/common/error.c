/* placeholder: being written */
typedef int lshmoe_placeholder_t;
