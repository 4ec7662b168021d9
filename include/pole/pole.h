/*  pole - public header: the version and every class.                    */
#ifndef POLE_H_INCLUDED
#define POLE_H_INCLUDED

#define POLE_VERSION "0.1.0"

#include "pole/workflow.h"
#include "pole/engine.h"

#endif
