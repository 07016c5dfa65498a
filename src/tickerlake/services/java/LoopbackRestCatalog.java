// An Iceberg REST catalog on 127.0.0.1 only, for tickerlake's tests and local use.
//
// Iceberg's own fixture server (RESTCatalogServer) listens on every interface and has no
// setting for the address, so this assembles the same pieces (a JDBC catalog behind
// Iceberg's RESTCatalogAdapter and RESTCatalogServlet, in Jetty) with a connector bound to
// the loopback address. Java 17 runs this file from source: `java -cp <jars> LoopbackRestCatalog.java`.
//
// Settings come from the environment, as for the fixture: CATALOG_REST_PORT, CATALOG_URI
// (jdbc:sqlite:... or jdbc:postgresql://...), CATALOG_WAREHOUSE, CATALOG_JDBC_SCHEMA__VERSION.

import java.util.HashMap;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public class LoopbackRestCatalog {
  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalArgumentException(name + " is not set");
    }
    return value;
  }

  public static void main(String[] args) throws Exception {
    Map<String, String> props = new HashMap<>();
    props.put("catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog");
    props.put("uri", env("CATALOG_URI"));
    props.put("warehouse", env("CATALOG_WAREHOUSE"));
    String schemaVersion = System.getenv("CATALOG_JDBC_SCHEMA__VERSION");
    props.put("jdbc.schema-version", schemaVersion == null ? "V1" : schemaVersion);
    Catalog catalog = CatalogUtil.buildIcebergCatalog("rest_backend", props, new Configuration());

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(new RESTCatalogAdapter(catalog))), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost("127.0.0.1");
    connector.setPort(Integer.parseInt(env("CATALOG_REST_PORT")));
    server.addConnector(connector);
    server.setHandler(context);
    server.start();
    server.join();
  }
}
