-- A staged plan's technical metadata stays in its row up to a page's worth, instead of moving
-- to the TOAST table past ~2 kB (a video's ffprobe document is just over it). Staged once and
-- read once by the insert step, the out-of-line copy cost a chunked write and a read through
-- the TOAST index for every video asset: 47k plans took 397 ms to stage and 480 ms to read
-- back out of line, 300 ms and 258 ms in line. Larger documents are still moved out of line.
ALTER TABLE ingest.pending_asset SET (toast_tuple_target = 8160);
