/*  =========================================================================
    fuzz_input - how a fuzzer input becomes ZeroMQ messages

    Shared by fuzz_codec.c and fuzz_handler.c (and so by their corpora).

        input    = frame-sep message-sep message *(message-sep message)
        message  = frame *(frame-sep frame)

    Byte 0 of the input is the frame separator, byte 1 the message
    separator; the rest is split on them. Any byte may appear inside a frame
    (NUL, 0xFF, ...) as long as the input picks other separators, so the
    fuzzer can reach every frame content, and the seeds stay readable:
    most start with "|\n" (frames separated by "|", one message a line).
    If both separators are the same byte, the input is one message. An
    input shorter than 2 bytes is one message of one frame, the input.

    e.g.  "|\nPOLE/1|PING|r1\nPOLE/1|SHOW|r2|1"
          -> [POLE/1][PING][r1]  and  [POLE/1][SHOW][r2][1]

    A message always has at least one frame (an empty message part is one
    empty frame), as on the wire.
    =========================================================================
*/
#ifndef POLE_FUZZ_INPUT_H_INCLUDED
#define POLE_FUZZ_INPUT_H_INCLUDED

#include <czmq.h>
#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_MESSAGES 1024   /* more are ignored                       */

//  Calls `each (msg, arg)` for every message of the input, in order; the
//  callback takes ownership of `msg`. Returns the number of messages.
typedef void (fuzz_message_fn) (zmsg_t *msg, void *arg);

static inline size_t
fuzz_split (const uint8_t *data, size_t size, fuzz_message_fn *each, void *arg)
{
    if (size < 2) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, data, size);
        each (msg, arg);
        return 1;
    }
    uint8_t frame_sep = data [0];
    uint8_t message_sep = data [1];
    data += 2;
    size -= 2;
    size_t messages = 0;
    zmsg_t *msg = zmsg_new ();
    size_t start = 0;
    for (size_t index = 0; index <= size; index++) {
        bool end = index == size;
        bool frame_end = end || data [index] == frame_sep
                         || data [index] == message_sep;
        if (!frame_end)
            continue;
        zmsg_addmem (msg, data + start, index - start);
        start = index + 1;
        if (end || (data [index] == message_sep && message_sep != frame_sep)) {
            each (msg, arg);
            messages++;
            if (end || messages >= FUZZ_MAX_MESSAGES)
                return messages;
            msg = zmsg_new ();
        }
    }
    zmsg_destroy (&msg);     //  not reached
    return messages;
}

#endif
