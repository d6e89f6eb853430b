export {
  type EtcdCluster,
  EtcdMember,
  type EtcdMemberOptions,
  freePort,
  startEtcd,
  startEtcdCluster,
} from "../../src/cli/etcd-process.js";
