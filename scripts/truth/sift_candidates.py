#!/usr/bin/env python3
"""Candidate pairs for the leak truth, independent of osteoai: SIFT keypoints (OpenCV), FLANN
voting retrieval over all images (each image and its mirror as queries), plus every pair that
shares a Roboflow source name (recall only: names are not trusted), each verified by a RANSAC
affine fit and the pixel correlation after alignment. Writes a CSV with the evidence of every
candidate pair. Used with osteoai's own candidates (`audit --dump-candidates`, 100 neighbours)
to build tests/data/leak_truth.csv; pairs near the decision threshold were then checked by eye
with contact_sheet.py.

Usage: scripts/truth/sift_candidates.py DATA_DIR OUT.csv   (needs: pip install opencv-python-headless numpy)
"""
import collections, csv, glob, os, sys, time
import numpy as np, cv2

D = sys.argv[1]
OUT = sys.argv[2]
MAXS = 384
cv2.setNumThreads(1)
paths = sorted(glob.glob(D + '/*/*/*.jpg'))
print(len(paths), 'images', flush=True)
sift = cv2.SIFT_create(nfeatures=600)

def load(p):
    g = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
    h, w = g.shape
    s = MAXS / max(h, w)
    if s < 1:
        g = cv2.resize(g, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    return g

t = time.time()
imgs, kps, descs, fkps, fdescs = [], [], [], [], []
for i, p in enumerate(paths):
    g = load(p)
    imgs.append(g)
    k, d = sift.detectAndCompute(g, None)
    if d is None:
        k, d = [], np.zeros((0, 128), np.float32)
    kps.append(np.array([kp.pt for kp in k], np.float32).reshape(-1, 2)); descs.append(d)
    gf = cv2.flip(g, 1)
    k, d = sift.detectAndCompute(gf, None)
    if d is None:
        k, d = [], np.zeros((0, 128), np.float32)
    fkps.append(np.array([kp.pt for kp in k], np.float32).reshape(-1, 2)); fdescs.append(d)
    if i % 500 == 0:
        print('sift', i, time.time() - t, flush=True)
allD = np.concatenate(descs).astype(np.float32)
owner = np.concatenate([np.full(len(d), i, np.int32) for i, d in enumerate(descs)])
print('descriptors', allD.shape, time.time() - t, flush=True)
flann = cv2.FlannBasedMatcher(dict(algorithm=1, trees=4), dict(checks=48))
flann.add([allD]); flann.train()
print('index', time.time() - t, flush=True)

cands = collections.defaultdict(set)  # (a,b) a<b -> set of reasons
TOP = 8
for i in range(len(paths)):
    for flip, dq in ((0, descs[i]), (1, fdescs[i])):
        if len(dq) == 0:
            continue
        ms = flann.knnMatch(dq.astype(np.float32), k=8)
        votes = collections.Counter()
        for m in ms:
            nn = [(x.distance, owner[x.trainIdx]) for x in m if owner[x.trainIdx] != i]
            if len(nn) < 2:
                continue
            d1, a = nn[0]
            d2 = next((d for d, o in nn[1:] if o != a), None)
            if d2 is None or d1 < 0.8 * d2:
                votes[a] += 1
        for a, v in votes.most_common(TOP):
            if v >= 3:
                cands[(min(i, a), max(i, a))].add('flann')
    if i % 500 == 0:
        print('query', i, len(cands), time.time() - t, flush=True)
src = collections.defaultdict(list)
for i, p in enumerate(paths):
    src[os.path.basename(p).split('.rf.')[0]].append(i)
for g in src.values():
    for x in g:
        for y in g:
            if x < y:
                cands[(x, y)].add('name')
print('candidates', len(cands), time.time() - t, flush=True)

bf = cv2.BFMatcher(cv2.NORM_L2)

def verify(a, b):
    """Best over (a as is, a mirrored) of: inliers, hull share, NCC after alignment."""
    best = None
    for flip in (0, 1):
        ka, da = (fkps[a], fdescs[a]) if flip else (kps[a], descs[a])
        kb, db = kps[b], descs[b]
        if len(da) < 3 or len(db) < 3:
            continue
        ms = bf.knnMatch(da, db, k=2)
        good = [m[0] for m in ms if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
        if len(good) < 4:
            r = (len(good), 0, 0.0, -1.0, flip)
        else:
            pa = ka[[m.queryIdx for m in good]]; pb = kb[[m.trainIdx for m in good]]
            M, inl = cv2.estimateAffine2D(pa, pb, ransacReprojThreshold=4.0, maxIters=2000, confidence=0.995)
            if M is None:
                r = (len(good), 0, 0.0, -1.0, flip)
            else:
                n_in = int(inl.sum())
                pin = pb[inl.ravel() == 1]
                hull = cv2.contourArea(cv2.convexHull(pin)) if n_in >= 3 else 0.0
                hb = imgs[b].shape
                share = hull / (hb[0] * hb[1])
                ga = cv2.flip(imgs[a], 1) if flip else imgs[a]
                warped = cv2.warpAffine(ga, M, (hb[1], hb[0]), flags=cv2.INTER_LINEAR, borderValue=0)
                mask = cv2.warpAffine(np.full(ga.shape, 255, np.uint8), M, (hb[1], hb[0]), flags=cv2.INTER_NEAREST, borderValue=0)
                m = (mask > 0) & (warped > 8) & (imgs[b] > 8)
                if m.sum() < 500:
                    ncc = -1.0
                else:
                    x = warped[m].astype(np.float64); y = imgs[b][m].astype(np.float64)
                    x -= x.mean(); y -= y.mean()
                    ncc = float((x * y).sum() / (np.sqrt((x * x).sum() * (y * y).sum()) + 1e-9))
                r = (len(good), n_in, share, ncc, flip)
        if best is None or (r[1], r[3]) > (best[1], best[3]):
            best = r
    return best

rows = []
for k, ((a, b), why) in enumerate(sorted(cands.items())):
    r = verify(a, b)
    if r is None:
        continue
    rows.append((paths[a].replace(D + '/', ''), paths[b].replace(D + '/', ''), '+'.join(sorted(why))) + r)
    if k % 2000 == 0:
        print('verify', k, time.time() - t, flush=True)
with open(OUT, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['a', 'b', 'why', 'matches', 'inliers', 'hull_share', 'ncc', 'flip'])
    w.writerows(rows)
print('done', len(rows), time.time() - t, flush=True)
