//! The world's side of the clients: running a producer or reader step and routing what
//! it asks for (requests to brokers, observations, wake-ups).

use super::*;

impl World<'_> {
    // ----- clients ---------------------------------------------------------------

    /// Tells a client its request's connection broke (soon: the kernel says so at once).
    pub(super) fn disconnect(&mut self, token: u64) {
        let Some(t) = self.tokens.remove(&token) else {
            return;
        };
        let to = t.client.endpoint();
        self.schedule(
            self.now + 1,
            Event::Deliver {
                from: Endpoint::Broker(t.broker),
                to,
                payload: Payload::Disconnected { corr: t.corr },
            },
        );
    }

    pub(super) fn client_step(&mut self, client: Client, response: Reply) {
        let mut env = ClientEnv {
            now: self.now,
            rng: &mut self.rng,
            brokers: self.scenario.brokers,
            batch_ids: &mut self.batch_ids,
            out: Vec::new(),
        };
        match (client, response) {
            (Client::Producer(i), Reply::None) => self.producers[i as usize].wake(&mut env),
            (Client::Producer(i), Reply::Response(corr, resp)) => {
                self.producers[i as usize].on_response(&mut env, corr, resp)
            }
            (Client::Producer(i), Reply::Disconnected(corr)) => {
                self.producers[i as usize].on_disconnect(&mut env, corr)
            }
            (Client::Reader(i), Reply::None) => self.readers[i as usize].wake(&mut env),
            (Client::Reader(i), Reply::Response(corr, resp)) => {
                self.readers[i as usize].on_response(&mut env, corr, resp)
            }
            (Client::Reader(i), Reply::Disconnected(corr)) => {
                self.readers[i as usize].on_disconnect(&mut env, corr)
            }
            (Client::Member(i), Reply::None) => self.members[i as usize].wake(&mut env),
            (Client::Member(i), Reply::Response(corr, resp)) => {
                self.members[i as usize].on_response(&mut env, corr, resp)
            }
            (Client::Member(i), Reply::Disconnected(corr)) => {
                self.members[i as usize].on_disconnect(&mut env, corr)
            }
        }
        let out = env.out;
        self.client_actions(client, out);
    }

    /// Carries out what a client asked for.
    pub(super) fn client_actions(&mut self, client: Client, out: Vec<ClientAction>) {
        let from = client.endpoint();
        for action in out {
            match action {
                ClientAction::Send { to, corr, req } => {
                    self.next_token += 1;
                    let token = self.next_token;
                    let produce = match (&req, client) {
                        (
                            ClientRequest::Produce {
                                partition,
                                acks,
                                batch,
                                ..
                            },
                            Client::Producer(i),
                        ) => {
                            let header =
                                BatchHeader::parse(batch).expect("producers make whole batches");
                            let mode = match acks {
                                eddy_core::message::Acks::None => AcksMode::Zero,
                                eddy_core::message::Acks::Leader => AcksMode::One,
                                eddy_core::message::Acks::All => AcksMode::All,
                            };
                            let _ = i;
                            Some((self.parts[partition], self.batch_ids[&header.crc], mode))
                        }
                        _ => None,
                    };
                    self.tokens.insert(
                        token,
                        Token {
                            client,
                            broker: to.0,
                            corr,
                            produce,
                        },
                    );
                    self.send(
                        from,
                        Endpoint::Broker(to.0),
                        Payload::Request { token, req },
                    );
                }
                ClientAction::Observe(obs) => {
                    if matches!(client, Client::Member(_)) {
                        self.probe_rebalance(&obs);
                    }
                    self.observe(obs)
                }
                ClientAction::WakeAt(at) => {
                    self.schedule(at.max(self.now), Event::ClientWake { client })
                }
            }
        }
    }
}
