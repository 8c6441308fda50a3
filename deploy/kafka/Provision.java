// Kafka's users and ACLs, set through Kafka's own Admin API in one JVM.
//
// deploy/local/stack.py compiles this file once into .run/cache/, runs it as
// `java -cp '<jar cache>/*:<classes>' Provision` and writes a plan on its standard input, so that
// no password appears on a command line:
//
//   config KEY=VALUE                               an Admin client setting (bootstrap, SASL)
//   user MECHANISM NAME PASSWORD                   upsert a SCRAM credential
//   acl PRINCIPAL RESOURCE PATTERN NAME OPERATION  make sure this ALLOW binding (any host) exists
//   drop PRINCIPAL RESOURCE PATTERN NAME OPERATION make sure it does not
//
// It returns once the `acl` bindings answer a describe, i.e. once the node it talks to (the
// broker, which applies ACLs from the metadata log a moment after the controller commits them)
// enforces them. Every step is idempotent.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
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
        Properties config = new Properties();
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        Set<AclBinding> wanted = new LinkedHashSet<>();
        Set<AclBinding> unwanted = new LinkedHashSet<>();
        BufferedReader in =
                new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] word = line.strip().split(" ", 2);
            switch (word[0]) {
                case "" -> { }
                case "config" -> {
                    int eq = word[1].indexOf('=');
                    config.setProperty(word[1].substring(0, eq), word[1].substring(eq + 1));
                }
                case "user" -> users.add(user(word[1].split(" ")));
                case "acl" -> wanted.add(binding(word[1].split(" ")));
                case "drop" -> unwanted.add(binding(word[1].split(" ")));
                default -> throw new IllegalArgumentException("unknown plan line: " + word[0]);
            }
        }
        try (Admin admin = Admin.create(config)) {
            apply(admin, users, wanted, unwanted);
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

    static void apply(
            Admin admin,
            List<UserScramCredentialAlteration> users,
            Set<AclBinding> wanted,
            Set<AclBinding> unwanted)
            throws Exception {
        if (!users.isEmpty()) {
            admin.alterUserScramCredentials(users).all().get();
        }
        Collection<AclBinding> present = admin.describeAcls(AclBindingFilter.ANY).values().get();
        List<AclBinding> missing = new ArrayList<>(wanted);
        missing.removeAll(present);
        List<AclBindingFilter> stale = new ArrayList<>();
        for (AclBinding binding : unwanted) {
            if (present.contains(binding)) {
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
                "kafka: %d SCRAM users upserted; ACLs: %d wanted (%d created), %d removed%n",
                users.size(), wanted.size(), missing.size(), stale.size());
    }

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
