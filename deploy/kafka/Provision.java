// Kafka's principals and their ACLs, set through Kafka's own Admin API in one JVM.
//
// deploy/local/stack.py compiles this file once into .run/cache/, runs it as
// `java -cp '<jar cache>/*:<classes>' Provision MODE` and writes a plan on its standard input, so
// that no password appears on a command line:
//
//   config KEY=VALUE                              an Admin client setting (bootstrap, SASL)
//   user MECHANISM NAME PASSWORD                  upsert a SCRAM credential
//   acl PRINCIPAL RESOURCE PATTERN NAME OPERATION an ALLOW binding for any host
//
// MODE apply: upserts the users, creates the missing bindings and deletes the bindings of the
// plan's principals on the plan's resource patterns that the plan does not list (so `up`
// converges when the table shrinks; bindings on other resources are left alone). It returns once
// the bindings answer a describe, i.e. once the node it talks to enforces them.
// MODE revoke: deletes exactly the plan's bindings.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Provision {
    static final int SCRAM_ITERATIONS = 8192;
    static final long VISIBLE_WITHIN_MS = 30_000;

    public static void main(String[] args) throws Exception {
        if (args.length != 1 || !(args[0].equals("apply") || args[0].equals("revoke"))) {
            System.err.println("usage: Provision apply|revoke < plan");
            System.exit(2);
        }
        Properties config = new Properties();
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        Set<AclBinding> wanted = new LinkedHashSet<>();
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] word = line.strip().split(" ", 2);
            if (word[0].isEmpty()) {
                continue;
            }
            switch (word[0]) {
                case "config" -> {
                    int eq = word[1].indexOf('=');
                    config.setProperty(word[1].substring(0, eq), word[1].substring(eq + 1));
                }
                case "user" -> users.add(user(word[1].split(" ")));
                case "acl" -> wanted.add(binding(word[1].split(" ")));
                default -> throw new IllegalArgumentException("unknown plan line: " + word[0]);
            }
        }
        try (Admin admin = Admin.create(config)) {
            if (args[0].equals("revoke")) {
                revoke(admin, wanted);
            } else {
                apply(admin, users, wanted);
            }
        } catch (ExecutionException error) {
            System.err.println("kafka: " + error.getCause());
            System.exit(1);
        }
    }

    static UserScramCredentialAlteration user(String[] field) {
        ScramMechanism mechanism = ScramMechanism.fromMechanismName(field[0]);
        if (mechanism == ScramMechanism.UNKNOWN) {
            throw new IllegalArgumentException("unknown SCRAM mechanism " + field[0]);
        }
        return new UserScramCredentialUpsertion(
                field[1], new ScramCredentialInfo(mechanism, SCRAM_ITERATIONS), field[2]);
    }

    static AclBinding binding(String[] field) {
        return new AclBinding(
                new ResourcePattern(
                        ResourceType.fromString(field[1]), field[3], PatternType.fromString(field[2])),
                new AccessControlEntry(
                        field[0], "*", AclOperation.fromString(field[4]), AclPermissionType.ALLOW));
    }

    static void apply(Admin admin, List<UserScramCredentialAlteration> users, Set<AclBinding> wanted)
            throws Exception {
        if (!users.isEmpty()) {
            admin.alterUserScramCredentials(users).all().get();
        }
        Set<String> principals = new HashSet<>();
        Set<ResourcePattern> patterns = new HashSet<>();
        for (AclBinding binding : wanted) {
            principals.add(binding.entry().principal());
            patterns.add(binding.pattern());
        }
        Collection<AclBinding> present = admin.describeAcls(AclBindingFilter.ANY).values().get();
        List<AclBinding> missing = new ArrayList<>(wanted);
        missing.removeAll(present);
        List<AclBindingFilter> stale = new ArrayList<>();
        for (AclBinding binding : present) {
            if (principals.contains(binding.entry().principal())
                    && patterns.contains(binding.pattern())
                    && !wanted.contains(binding)) {
                stale.add(binding.toFilter());
            }
        }
        if (!missing.isEmpty()) {
            admin.createAcls(missing).all().get();
        }
        if (!stale.isEmpty()) {
            admin.deleteAcls(stale).all().get();
        }
        awaitVisible(admin, wanted);
        System.out.printf(
                "kafka: %d SCRAM users upserted; ACLs: %d wanted, %d created, %d stale removed%n",
                users.size(), wanted.size(), missing.size(), stale.size());
    }

    static void revoke(Admin admin, Set<AclBinding> bindings) throws Exception {
        List<AclBindingFilter> filters = new ArrayList<>();
        for (AclBinding binding : bindings) {
            filters.add(binding.toFilter());
        }
        if (!filters.isEmpty()) {
            admin.deleteAcls(filters).all().get();
        }
        System.out.printf("kafka: %d ACLs revoked%n", filters.size());
    }

    /** A broker applies ACLs from the metadata log a moment after the controller commits them. */
    static void awaitVisible(Admin admin, Set<AclBinding> wanted) throws Exception {
        long deadline = System.currentTimeMillis() + VISIBLE_WITHIN_MS;
        while (!admin.describeAcls(AclBindingFilter.ANY).values().get().containsAll(wanted)) {
            if (System.currentTimeMillis() > deadline) {
                throw new IllegalStateException("ACLs not visible after " + VISIBLE_WITHIN_MS + " ms");
            }
            Thread.sleep(50);
        }
    }
}
