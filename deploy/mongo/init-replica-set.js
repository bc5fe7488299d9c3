// Initialise the replica set `rs0` once; a no-op when it already exists.
// Run by the compose service `mongo-init` (mongosh) against mongo-1.
const members = [
  { _id: 0, host: "mongo-1:27017", priority: 2 },
  { _id: 1, host: "mongo-2:27017", priority: 1 },
  { _id: 2, host: "mongo-3:27017", priority: 1 },
];

function initialised() {
  try {
    rs.status();
    return true;
  } catch (e) {
    if (e.codeName === "NotYetInitialized" || e.code === 94) {
      return false;
    }
    throw e;
  }
}

if (initialised()) {
  print("replica set rs0 already initialised");
} else {
  rs.initiate({ _id: "rs0", members: members });
  print("replica set rs0 initiated");
}

// Carnet needs a primary (majority, journaled writes): wait up to 120 s.
const deadline = Date.now() + 120 * 1000;
while (!db.hello().isWritablePrimary && !db.hello().primary) {
  if (Date.now() > deadline) {
    print("no primary elected after 120 s");
    quit(1);
  }
  sleep(1000);
}
print("primary: " + db.hello().primary);
